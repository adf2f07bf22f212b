"""``GET /metrics``: the Prometheus text format, behind ``SIGNOFF_METRICS_TOKEN``
(``access``: 404 until it is set, then 401 without it as a bearer token). Like the health
probes the route is left out of the OpenAPI document: it is for the operator's Prometheus, not
for API clients (docs/api.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from signoff.config import Settings
from signoff.db import Database
from signoff.kit.clock import utc_now
from signoff.metrics import instruments
from signoff.metrics.access import refusal
from signoff.metrics.repository import Snapshot, snapshot

router = APIRouter(include_in_schema=False)


def _families(state: Snapshot) -> list[Metric]:
    families: list[Metric] = []

    def by_label(name: str, doc: str, label: str, values: dict[str, int]) -> None:
        family = CounterMetricFamily(name, doc, labels=[label])
        for value, count in sorted(values.items()):
            family.add_metric([str(value)], count)
        families.append(family)

    def gauge(name: str, doc: str, value: float) -> None:
        families.append(GaugeMetricFamily(name, doc, value=value))

    def counter(name: str, doc: str, value: float) -> None:
        families.append(CounterMetricFamily(name, doc, value=value))

    by_label("signoff_runs_started", "Runs started, by trigger.", "trigger", state.runs_started)
    by_label(
        "signoff_runs_completed", "Runs completed, by trigger.", "trigger", state.runs_completed
    )
    by_label("signoff_runs_failed", "Runs failed, by trigger.", "trigger", state.runs_failed)
    gauge(
        "signoff_steps_awaiting_approval",
        "Steps waiting for a person's decision.",
        state.steps_awaiting_approval,
    )
    gauge(
        "signoff_steps_ready",
        "Queue lag: steps ready to execute that no worker has claimed yet.",
        state.steps_ready,
    )
    gauge(
        "signoff_steps_ready_oldest_seconds",
        "Queue lag: how long the oldest ready, unclaimed step has waited (0 when none).",
        state.steps_ready_oldest_seconds,
    )
    gauge(
        "signoff_mail_outbox_backlog",
        "Emails in the outbox not sent yet (due now or waiting for a retry).",
        state.outbox_backlog,
    )
    counter(
        "signoff_mail_failures",
        "Delivery attempts that failed (each retry counts).",
        state.mail_failures,
    )
    counter(
        "signoff_mail_given_up",
        "Emails given up on after their last attempt.",
        state.mail_given_up,
    )
    by_label(
        "signoff_schedule_fires",
        "Schedule due times handled: a run started, or skipped (a run was still active).",
        "outcome",
        state.schedule_fires,
    )
    counter(
        "signoff_schedule_misses",
        "Schedule due times handled too late (the service was down): logged, not run.",
        state.schedule_misses,
    )
    return families


class _Collected:
    """A collector that yields families computed beforehand (the queries are async)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics; see the module docstring for who may read them."""
    settings: Settings = request.app.state.settings
    refused = refusal(settings, request.headers.get("authorization", ""))
    if refused is not None:
        raise refused
    db: Database = request.app.state.db
    async with db.read() as session:
        state = await snapshot(session, utc_now())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected(_families(state)))
    body = instruments.exposition() + generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
