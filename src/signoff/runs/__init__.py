"""Runs: start, execute step by step, pause for approval, decide, stop."""
