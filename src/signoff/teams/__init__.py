"""Team members, roles and invitations (docs/api.md, Accounts and teams)."""
