"""Cron schedules: validation, human-readable descriptions, next fire times."""
