"""``create_app(settings)``: the FastAPI application, its lifespan, error handling and routes."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

import signoff
from signoff.apidoc.document import install_openapi
from signoff.apidoc.pages import install_docs
from signoff.audit.endpoints import router as audit_router
from signoff.auth.endpoints import router as auth_router
from signoff.config import Settings
from signoff.dashboard.account_links import router as teams_pages_router
from signoff.dashboard.endpoints import router as dashboard_router
from signoff.dashboard.links import router as links_router
from signoff.dashboard.pages import STATIC_DIR, error_page, wants_html
from signoff.dashboard.team_pages import router as dashboard_account_router
from signoff.db import Database
from signoff.errors import AppError, ErrorCode, NotFound
from signoff.health import router as health_router
from signoff.kit.body_limit import BodyLimitMiddleware
from signoff.kit.security_headers import SecurityHeadersMiddleware
from signoff.kit.storable import reject_unstorable
from signoff.memory.endpoints import router as memory_router
from signoff.metrics.endpoints import router as metrics_router
from signoff.runs.endpoints import router as runs_router
from signoff.runtime import HandOver, Runtime, metered_llm
from signoff.scheduling.endpoints import router as scheduling_router
from signoff.teams.endpoints import account_router as teams_account_router
from signoff.teams.endpoints import router as teams_router
from signoff.workflows.endpoints import approvals_router as inbox_router
from signoff.workflows.endpoints import router as workflows_router

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    422: ErrorCode.VALIDATION_ERROR,
    429: ErrorCode.TOO_MANY_REQUESTS,
}


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "goal") -> "goal"; ("query", "token") -> "token"
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_details(exc: RequestValidationError) -> list[dict[str, str]]:
    details = []
    for error in exc.errors():
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        details.append({"field": _field_name(tuple(error.get("loc", ()))), "message": message})
    return details


def _a_person_on_the_dashboard(request: Request) -> bool:
    """A browser on a dashboard address gets its errors as pages, not JSON."""
    return request.url.path.startswith("/dashboard") and wants_html(request)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
        return JSONResponse(
            {
                "error": f"Invalid request: {summary}.",
                "code": ErrorCode.VALIDATION_ERROR,
                "details": details,
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and _a_person_on_the_dashboard(request):
            return error_page(request, NotFound("Not found."))
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = "Not found."
        return JSONResponse(
            {"error": message, "code": _HTTP_CODES.get(exc.status_code, ErrorCode.HTTP_ERROR)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", exc_info=exc)
        if _a_person_on_the_dashboard(request):
            # The page every dashboard refusal gets (a 500 has the default heading).
            return error_page(
                request,
                AppError(
                    "Something went wrong on our side; nothing you did caused it. "
                    "Try again in a moment."
                ),
            )
        return JSONResponse(
            {"error": "Something went wrong on our side.", "code": ErrorCode.INTERNAL_ERROR},
            status_code=500,
        )


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    hand_over: HandOver | None = None,
    http_workers: Sequence[socket.socket] = (),
) -> FastAPI:
    """Build the application. ``db`` lets tests share one database between apps.

    ``signoff serve --workers N``: the first process's app runs the Runtime and listens to the
    ``http_workers``' links; each other process's app has a ``hand_over`` instead of a Runtime.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_db = db is None
        app.state.db = db or Database.from_url(settings.effective_database_url)
        settings.secret_key()  # generate the development secret now, not on the first link
        if hand_over is not None:  # HTTP only: the first process runs the background parts
            app.state.db.on_commit = hand_over.after_commit
            try:
                yield
            finally:
                if owns_db:
                    await app.state.db.dispose()
            return
        runtime = Runtime(settings, app.state.db, app.state.llm)
        app.state.runtime = runtime
        app.state.executor = runtime.executor
        app.state.queue = runtime.queue
        app.state.mail_sender = runtime.mail_sender
        await runtime.start()
        for link in http_workers:
            runtime.listen(link)
        try:
            yield
        finally:
            await runtime.stop()
            if owns_db:
                await app.state.db.dispose()

    app = FastAPI(
        title="Signoff",
        version=signoff.__version__,
        summary="AI workflows that people sign off on.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
        # Text no column can store (NUL, lone surrogates) in a path, query, header or form
        # value is a 422 before any route reads it (request bodies: kit.schemas.ApiInput).
        dependencies=[Depends(reject_unstorable)],
    )
    app.state.settings = settings
    # Built now, so a model name that cannot work stops the start with a clear message.
    app.state.llm = metered_llm(settings)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    # Added last, so it wraps the body limit's refusals too.
    app.add_middleware(SecurityHeadersMiddleware, https=settings.secure_cookies)

    # Swagger UI at /docs and ReDoc at /redoc, served locally: they work with no network.
    install_docs(app)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        """A first look at the service is the dashboard."""
        return RedirectResponse("/dashboard", status_code=307)

    app.mount("/dashboard/static", StaticFiles(directory=str(STATIC_DIR)), name="dashboard-static")
    # Link routes first: /api/workflows/resume must not be taken for a workflow id.
    for router in (
        health_router,
        metrics_router,
        auth_router,
        links_router,
        workflows_router,
        inbox_router,
        runs_router,
        scheduling_router,
        memory_router,
        teams_router,
        teams_account_router,
        audit_router,
        teams_pages_router,
        dashboard_router,
        dashboard_account_router,
    ):
        app.include_router(router)
    install_openapi(app)
    return app
