"""Alembic migrations; ``signoff db upgrade`` runs them (see :mod:`.runner`)."""
