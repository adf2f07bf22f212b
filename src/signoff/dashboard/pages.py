"""The one Jinja2 environment for every HTML page, and what every dashboard page shares: the
signed-in user (:data:`PageAuth`), errors answered as pages (:class:`PageRoute`), the
one-time notice carried across a POST/redirect/GET (:func:`flash`), and the count of decisions
waiting for the viewer that the navigation shows (:func:`page_auth`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.responses import Response
from starlette.routing import Match

from signoff.auth.csrf import csrf_token
from signoff.auth.dependencies import SESSION_COOKIE, current_auth
from signoff.auth.service import AuthContext
from signoff.config import Settings
from signoff.dashboard import formatting, live
from signoff.dependencies import DB, Config
from signoff.errors import AppError, NotFound, Unauthorized, Unprocessable
from signoff.kit.clock import utc_now
from signoff.kit.constant_time import same_secret
from signoff.workflows import inbox

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
FLASH_COOKIE = "signoff_flash"
FLASH_SECONDS = 60
# Pages carrying tokens (email links, the dev mailbox) must not be cached. (No page sends a
# referrer, so none leaks its URL: kit/security_headers.py.)
LINK_HEADERS = {"Cache-Control": "no-store"}
ResponseT = TypeVar("ResponseT", bound=Response)

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters.update(
    markdown=formatting.markdown,
    duration=formatting.duration,
    when=formatting.when,
    local_time=formatting.local_time,
    words=formatting.words,
    diff=formatting.diff,
    usd=formatting.usd,
    channel=formatting.channel,
)
templates.env.globals.update(
    archive_question=formatting.archive_question,
    stop_question=formatting.stop_question,
    remove_member_question=formatting.remove_member_question,
)

# Headings of the page that answers a refused dashboard action, by status.
_ERROR_HEADINGS = {
    403: "Not allowed",
    409: "That cannot be done now",
    422: "Check what you entered",
    429: "Too many attempts",
    502: "The model did not answer",
}


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
    headers = dict(headers or {})
    settings: Settings = request.app.state.settings
    context.setdefault("auth", getattr(request.state, "auth", None))
    context.setdefault("mailbox_enabled", dev_mailbox_enabled(settings))
    inbox_rows = getattr(request.state, "inbox_rows", None)
    if inbox_rows is not None:
        context.setdefault("inbox_count", len(inbox_rows))
        if "live_url" not in context:
            # Every signed-in page follows the count in its navigation, live.
            context["live_url"] = "/dashboard/inbox/events"
            context["live_version"] = live.version(inbox_rows)
    notice = read_flash(request)
    if notice:
        context.setdefault("notice", notice)
    session_token = request.cookies.get(SESSION_COOKIE)
    if session_token:
        # Every form a signed-in page shows carries it (see signoff.auth.csrf).
        context.setdefault("csrf_token", csrf_token(settings, session_token))
        # Private pages (run outputs, CSRF tokens) stay out of shared and back-button caches.
        headers.setdefault("Cache-Control", "no-store")
    response = templates.TemplateResponse(
        request, name, context, status_code=status_code, headers=headers
    )
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path="/dashboard")
    return response


def _flash_signature(settings: Settings, payload: str) -> str:
    key = hashlib.sha256(f"flash:{settings.secret_key()}".encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def confirm_page(request: Request, *, question: str, button: str, back: str) -> Response:
    """The question a destructive form asks before it acts, for a browser without JavaScript
    (with it, ``static/app.js`` asks in place and sends ``confirmed``): the same form again,
    with ``confirmed`` set, and a way back. Nothing has changed yet."""
    return render(
        request,
        "confirm.html",
        {"question": question, "button": button, "action": request.url.path, "back": back},
    )


def flash(response: ResponseT, settings: Settings, message: str) -> ResponseT:
    """Show ``message`` once, on the page the browser is redirected to (returns ``response``).

    The cookie is signed and expires within a minute: the page after an email link's decision
    shows it to a visitor who is not signed in, as what the service says was decided, so it
    must come from us. It holds only the sentence (no token, nothing that grants access).
    """
    expires = int(utc_now().timestamp()) + FLASH_SECONDS
    payload = base64.urlsafe_b64encode(json.dumps({"m": message, "e": expires}).encode()).decode()
    response.set_cookie(
        FLASH_COOKIE,
        f"{payload}.{_flash_signature(settings, payload)}",
        max_age=FLASH_SECONDS,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/dashboard",
    )
    return response


def read_flash(request: Request) -> str | None:
    """The notice :func:`flash` left for this page, if it is ours and still fresh."""
    value = request.cookies.get(FLASH_COOKIE, "")
    payload, _, signature = value.partition(".")
    settings: Settings = request.app.state.settings
    if not payload or not same_secret(signature, _flash_signature(settings, payload)):
        return None
    try:
        found = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return None
    message, expires = found.get("m"), found.get("e")
    if not isinstance(message, str) or not isinstance(expires, int):
        return None
    return message if expires >= utc_now().timestamp() else None


async def page_auth(
    request: Request, auth: Annotated[AuthContext, Depends(current_auth)], db: DB
) -> AuthContext:
    """The signed-in user (the API's own check, so a form POST needs its CSRF token), kept on
    the request so that every page, error pages included, shows who is signed in, with the
    number of decisions waiting for them (the navigation's count)."""
    request.state.auth = auth
    if request.method == "GET":
        async with db.read() as session:
            request.state.inbox_rows = await inbox.progress(session, auth)
    return auth


PageAuth = Annotated[AuthContext, Depends(page_auth)]


async def optional_page_auth(request: Request, db: DB, settings: Config) -> AuthContext | None:
    """:data:`PageAuth` for a page that also answers a visitor who is not signed in (the
    workflow page after an email link's decision): None instead of the sign-in redirect."""
    try:
        auth = await current_auth(request, db, settings, None, None)
    except Unauthorized:
        return None
    return await page_auth(request, auth, db)


MaybePageAuth = Annotated[AuthContext | None, Depends(optional_page_auth)]


def login_redirect(request: Request) -> Response:
    # After signing in, a GET comes back to its page; a form POST goes to the dashboard
    # (its page may have changed meanwhile).
    target = request.url.path if request.method == "GET" else "/dashboard"
    return RedirectResponse(f"/dashboard/login?next={quote(target)}", status_code=303)


def _page_of(request: Request) -> str:
    """The page a form was posted from: the nearest parent path that is a dashboard page."""
    path = request.url.path
    while path.count("/") > 1:
        path = path.rsplit("/", 1)[0]
        scope = {"type": "http", "method": "GET", "path": path}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.routes):
            return path
    return "/dashboard"


def error_page(request: Request, error: AppError) -> Response:
    if isinstance(error, NotFound):
        return render(request, "not_found.html", status_code=404)
    if error.error_code == "no_team":
        # Signed in, but they left or were removed from their last team: say what to do next,
        # and let them sign out.
        return render(request, "no_team.html", status_code=error.status)
    return render(
        request,
        "message.html",
        {
            "heading": _ERROR_HEADINGS.get(error.status, "Something went wrong"),
            "message": error.message,
            "back": _page_of(request) if request.method == "POST" else None,
        },
        status_code=error.status,
        headers=error.headers,
    )


class PageRoute(APIRoute):
    """A dashboard route: the services' errors become pages for a person, not JSON.

    No session: the browser goes to sign in. Another team's object or a missing one: the
    "not found" page (404). Any other refusal (403, 409, 422, …): a page with the reason and
    its status. Endpoints just call the services and let them raise.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthorized:
                return login_redirect(request)
            except AppError as error:
                return error_page(request, error)
            except RequestValidationError:
                # Only a hand-made request gets here: an address with a malformed id (nothing
                # there), or a form without a field our forms always send.
                if request.method == "GET":
                    return error_page(request, NotFound("Not found."))
                return error_page(request, Unprocessable("This form is incomplete."))

        return page_handler
