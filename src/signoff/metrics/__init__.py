"""Prometheus metrics (``GET /metrics``, README: Monitoring).

Two sources, chosen by what each series describes:

- **state and business counts come from the database at scrape time** (``repository``): runs
  started, completed and failed, steps awaiting approval, the queue's lag, the outbox, mail
  failures, schedule fires and misses. The database is the truth for every process on every
  machine (``signoff serve`` processes, ``signoff worker`` processes elsewhere), so these are
  right however the service is deployed, and survive restarts;
- **timings and token counts are recorded where they happen** (``instruments``): step
  durations, model latencies, LLM tokens, approval decision latencies. Several ``signoff serve``
  processes share them through prometheus_client's multiprocess mode (``directory``).

This package imports nothing of prometheus_client at import time except through
``instruments``; ``directory`` must run before that (the client picks its storage when first
imported).
"""
