"""The series recorded in-process, where the work happens (the rest come from the database).

Each record is a label lookup and an add: about a microsecond, in memory or (multiprocess mode)
in a memory-mapped file, so the engine's hot path does not notice it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from signoff.metrics.directory import ENV

# Decided when prometheus_client is first imported (here), as the client decides its storage.
MULTIPROCESS = bool(os.environ.get(ENV))

# Only this module's series, not the client's default process and GC collectors: those describe
# whichever process answered the scrape, which with several serving processes is misleading.
REGISTRY = CollectorRegistry(auto_describe=True)

STEP_DURATION = Histogram(
    "signoff_step_duration_seconds",
    "Time a worker spent on one step attempt: from its claim to its recorded outcome.",
    ["tool"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
MODEL_LATENCY = Histogram(
    "signoff_model_latency_seconds",
    "Time of one request to the LLM, by the tool (output) it was asked for.",
    ["tool"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "signoff_llm_tokens",
    "Tokens the LLM reported, by configured model and direction (input or output).",
    ["model", "direction"],
    registry=REGISTRY,
)
APPROVAL_DECISION = Histogram(
    "signoff_approval_decision_seconds",
    "Time from a step's approval request to the decision on it.",
    ["decision"],
    buckets=(60, 300, 900, 1800, 3600, 7200, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 7 * 86400),
    registry=REGISTRY,
)

DECISIONS = ("approve", "reject")
for _decision in DECISIONS:
    APPROVAL_DECISION.labels(_decision)


def prepare_tools(tools: Iterable[str]) -> None:
    """Create every tool's series at zero, so a dashboard sees them before the first step."""
    for tool in tools:
        STEP_DURATION.labels(tool)
        MODEL_LATENCY.labels(tool)


def prepare_model(model: str) -> None:
    for direction in ("input", "output"):
        LLM_TOKENS.labels(model, direction)


def record_tokens(model: str, input_tokens: int, output_tokens: int) -> None:
    if input_tokens:
        LLM_TOKENS.labels(model, "input").inc(input_tokens)
    if output_tokens:
        LLM_TOKENS.labels(model, "output").inc(output_tokens)


def exposition() -> bytes:
    """The in-process series in the text format: this process's, or with several serving
    processes (``PROMETHEUS_MULTIPROC_DIR``) all of theirs, summed."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
