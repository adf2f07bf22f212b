"""The model factory and the built-in offline model.

:func:`signoff.llm.models.build_model` turns ``SIGNOFF_LLM_MODEL`` / ``SIGNOFF_LLM_BASE_URL``
into a pydantic-ai model once, at start-up, so a bad setting fails there and not at the first
request; :mod:`signoff.llm.offline` is the deterministic model that works with no key and no
network (the default).
"""
