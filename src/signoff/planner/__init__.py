"""The planner: one structured-output LLM call that turns a goal into a plan (docs/api.md,
The planner).

``schemas`` is the plan the model submits, ``prompts`` what it is told, and ``service`` the call
itself with the plan rules that are checked in code whatever the model said.
"""
