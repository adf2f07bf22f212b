"""The request plumbing every router shares: the database, the settings, the client.

Routes declare ``db: DB`` and ``settings: Config``; both come from ``app.state``, set once by
``create_app``. Jobs and emails need no dependency: a write defers them on its session and
``Database.write`` hands them over after the commit. ``client: Client`` is the caller's
address as the throttles count it (kit/client_ip.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from signoff.config import Settings, get_settings
from signoff.db import Database, get_db
from signoff.kit.client_ip import client_ip, throttle_key

DB = Annotated[Database, Depends(get_db)]
Config = Annotated[Settings, Depends(get_settings)]


def get_client(request: Request, settings: Config) -> str:
    """The client's throttle key: its address (``X-Forwarded-For`` only from a trusted proxy),
    for IPv6 its /64."""
    peer = request.client.host if request.client else None
    forwarded = request.headers.getlist("x-forwarded-for")
    return throttle_key(client_ip(peer, forwarded, settings.trusted_proxy_networks))


Client = Annotated[str, Depends(get_client)]
