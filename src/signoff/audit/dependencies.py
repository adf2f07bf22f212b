"""The ``CurrentActor`` dependency: the signed-in caller as the audit trail names them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from signoff.audit.service import Actor, Channel
from signoff.auth.dependencies import Auth


def current_actor(request: Request, auth: Auth) -> Actor:
    """The caller, the channel (a ``/dashboard`` form, else the API) and the user agent.

    It reuses the request's ``Auth`` (FastAPI resolves it once per request), so adding it to a
    route adds no query and no second check.
    """
    channel = Channel.DASHBOARD if request.url.path.startswith("/dashboard") else Channel.API
    return Actor.person(auth.user_id, auth.email, channel, request.headers.get("user-agent"))


CurrentActor = Annotated[Actor, Depends(current_actor)]
