"""Without ``SIGNOFF_METRICS_TOKEN``, ``/metrics`` does not exist (404 like any unknown path)."""

from __future__ import annotations

import httpx


async def test_metrics_are_off_without_a_token(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer anything-at-all-0123456789"}):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 404
        unknown = await client.get("/no-such-path", headers=headers)
        assert response.json() == unknown.json()
