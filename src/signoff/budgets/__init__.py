"""Per-team budgets on what costs money: plan drafts and run starts per hour, LLM tokens per day."""
