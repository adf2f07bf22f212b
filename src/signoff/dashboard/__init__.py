"""Server-rendered pages: the dashboard and the pages email links open."""
