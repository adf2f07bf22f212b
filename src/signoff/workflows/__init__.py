"""Workflows: goal → drafted plan → draft → approval → active → archived."""
