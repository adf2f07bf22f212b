"""The audit trail: who decided or changed what, when, through which channel (docs/security.md)."""
