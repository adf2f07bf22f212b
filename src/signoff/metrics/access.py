"""Who may read metrics, for the API's ``/metrics`` and ``signoff worker``'s alike: nobody until
``SIGNOFF_METRICS_TOKEN`` is set (404, like any unknown path), then whoever sends it as a
bearer token (else 401). Run counts and timings are the operator's business, not the internet's.
"""

from __future__ import annotations

from signoff.config import Settings
from signoff.errors import AppError, ErrorCode, NotFound, Unauthorized
from signoff.kit.constant_time import same_secret


def refusal(settings: Settings, authorization: str) -> AppError | None:
    """Why a scrape with this ``Authorization`` header is refused; None to answer it."""
    if settings.metrics_token is None:
        return NotFound("Not found.")
    expected = settings.metrics_token.get_secret_value()
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not same_secret(given.strip(), expected):
        return Unauthorized(
            "Metrics need the bearer token of SIGNOFF_METRICS_TOKEN.",
            code=ErrorCode.UNAUTHORIZED,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return None
