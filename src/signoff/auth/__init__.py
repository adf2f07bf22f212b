"""Accounts: users, teams, memberships, sessions, and who may do what."""
