"""ASGI middleware: the browser security headers of every response, set in one place.

Every response: ``X-Content-Type-Options: nosniff`` (a browser never guesses a type, so an
upload or a JSON answer is never run as a page), ``Referrer-Policy: no-referrer`` (email-link
and invitation URLs carry tokens, and no page of ours needs a referrer), and, when the public
base URL is https, ``Strict-Transport-Security``. HTML answers also get :data:`PAGE_CSP`
unless the route set its own (the API docs pages need a little more). The reasons are in
docs/security.md.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Our pages load scripts, styles and images from this origin only, run no inline script or
# style, cannot be framed (clickjacking), post forms only to us, and cannot have their
# relative URLs re-rooted by an injected <base>.
PAGE_CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
# No page of ours reads Referer (the sign-in forms' same-site check reads Sec-Fetch-Site and
# Origin), and link pages carry tokens in their URLs: nothing is told, to anyone.
REFERRER_POLICY = "no-referrer"
# A year; without includeSubDomains: other hosts under the domain are not ours to decide.
HSTS = "max-age=31536000"


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP response; a header a route set itself stays."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = REFERRER_POLICY
                if self.https:
                    headers["Strict-Transport-Security"] = HSTS
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", PAGE_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)
