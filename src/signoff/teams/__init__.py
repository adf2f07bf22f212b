"""Team members, invitations and email verification (SPEC §3.1)."""
