"""Email links: signed tokens, the scanner guard, the link endpoints and their pages."""
