"""Domain-free helpers shared by every package: the clock, ids, pagination, safe HTTP."""
