"""The tools a plan step can use (docs/api.md, Tools).

:mod:`signoff.tools.registry` is the catalogue: the eight names, the one-line summaries that the
planner prompt and the dashboard show, which tools always need a person's approval, and which
asset each one produces. The implementations live in one module per tool beside it.
"""
