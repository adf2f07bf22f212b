"""CSRF protection for requests that a browser authenticates with the session cookie.

:func:`verify_csrf` checks the token of a cookie-authenticated state change;
:func:`verify_same_origin` guards the sign-in and sign-up forms (login CSRF). The design is in
docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from signoff.config import Settings
from signoff.errors import ErrorCode, Forbidden
from signoff.kit.constant_time import same_secret

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def csrf_token(settings: Settings, session_token: str) -> str:
    """The CSRF token that goes with this session: an HMAC-SHA256 of the session token under
    the link-signing secret.

    Nothing is stored, every process computes the same value, and signing out (which ends the
    session) invalidates it. Pages put it in a hidden ``csrf_token`` field; scripts send it as
    the ``X-CSRF-Token`` header.
    """
    key = settings.secret_key().encode()
    return hmac.new(key, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def verify_same_origin(request: Request) -> None:
    """Refuse an unsafe request that a browser says came from another site (403).

    For signing in and signing up, which have no session yet and so no CSRF token: a hostile
    page could otherwise sign a visitor in to the attacker's account ("login CSRF") and watch
    what they do there.

    Browsers say it in ``Sec-Fetch-Site`` (all current ones): only ``same-origin`` and ``none``
    (typed or bookmarked) pass. Older ones send only ``Origin``, which must then name the host
    the request was sent to. A request with neither is not from a browser page, and no cookie
    of a visitor's is at stake, so it passes.
    """
    if request.method in SAFE_METHODS:
        return
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        allowed = site in ("same-origin", "none")
    else:
        origin = request.headers.get("origin")
        allowed = origin is None or origin.partition("://")[2] == request.headers.get("host")
    if not allowed:
        raise Forbidden(
            "This form did not come from Signoff. Open the sign-in page and try again.",
            code=ErrorCode.CROSS_SITE_FORM,
        )


async def verify_csrf(request: Request, settings: Settings, session_token: str) -> None:
    """Refuse an unsafe request whose CSRF token is missing or wrong (403, nothing changes).

    A browser attaches the session cookie to any request it sends us, including one a hostile
    page makes it send. ``SameSite=Lax`` already keeps the cookie off cross-site POSTs in current
    browsers; this is the second, browser-independent line. The session dependencies call it
    only for cookie-authenticated requests: ``Authorization: Bearer`` requests carry no cookie,
    and the email-link pages are protected by the token in their URL.
    """
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(_FORM_TYPES):
        # Starlette caches the parsed form, so the endpoint's Form() parameters still work.
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    expected = csrf_token(settings, session_token)
    if sent is None or not same_secret(sent, expected):
        raise Forbidden(
            "This form has expired or did not come from Signoff. Reload the page and try again.",
            code=ErrorCode.CSRF_FAILED,
        )
