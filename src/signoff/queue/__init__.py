"""Job queue: the interface the engine uses and its two backends (inline, procrastinate)."""
