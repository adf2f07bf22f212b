"""The one Jinja2 environment for every HTML page, and helpers to render them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from signoff.auth.csrf import csrf_token
from signoff.auth.dependencies import SESSION_COOKIE
from signoff.config import Settings

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def dev_mailbox_enabled(settings: Settings) -> bool:
    """Without SMTP outside production, emails are kept for the dev mailbox page to show."""
    return not settings.smtp_url and not settings.is_production


def wants_html(request: Request) -> bool:
    """Browsers ask for HTML; API clients get JSON."""
    return "text/html" in request.headers.get("accept", "")


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    context = dict(context or {})
    session_token = request.cookies.get(SESSION_COOKIE)
    if session_token:
        # Every form a signed-in page shows carries it (see signoff.auth.csrf).
        context.setdefault("csrf_token", csrf_token(request.app.state.settings, session_token))
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=headers
    )
