"""Email link endpoints (docs/api.md, Email links): whoever holds a valid link decides, with
no session.

Every mode: GET/HEAD from a known scanner user agent → 200, nothing decided; HEAD never
decides; POST always decides (then 303 to the dashboard).
``confirm`` mode (default): a GET decides only for a signed-in owner/admin of the workflow's
team; anyone else gets a page showing what is decided, with a button that POSTs.
``one-click`` mode: a GET from a non-scanner decides, as the seed API describes.
A step's reject GET decides at once only when the link also carries a note.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import Field, RootModel
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.approvals import tokens
from signoff.approvals.guard import BOT_USER_AGENT_MARKERS, is_bot
from signoff.audit.service import Actor
from signoff.auth import repository as auth_repository
from signoff.auth.dependencies import optional_auth, verify_session_csrf
from signoff.auth.service import AuthContext
from signoff.config import Settings
from signoff.dashboard.pages import LINK_HEADERS, flash, render, wants_html
from signoff.db import Database
from signoff.dependencies import DB, Config
from signoff.errors import AppError, ErrorCode, NotFound
from signoff.kit.openapi import HTML_PAGE, error_response
from signoff.kit.schemas import ApiModel
from signoff.models import Role, Run, RunStep, Workflow
from signoff.runs import repository as run_repository
from signoff.runs import service as run_service
from signoff.workflows import repository as workflow_repository
from signoff.workflows import service as workflow_service

router = APIRouter(prefix="/api/workflows", tags=["email links"])

MaybeAuth = Annotated[AuthContext | None, Depends(optional_auth)]
Token = Annotated[str | None, Query(description="The link's signed token.")]
# The longest feedback a reject may carry (the dashboard's decision allows the same).
MAX_NOTE_LENGTH = 4000


class LinkIgnored(ApiModel):
    """A scanner or preview opened the link: nothing was decided."""

    message: str
    code: Literal["ignored"] = Field(description="Always `ignored`.")


class PlanLinkPending(ApiModel):
    """A confirm-mode GET from an API client: nothing decided yet; POST to decide."""

    message: str
    workflow_id: str
    title: str


class StepLinkPending(ApiModel):
    """A confirm-mode GET from an API client: nothing decided yet; POST to decide."""

    message: str
    run_id: int
    step_index: int
    attempt: int
    output: str | None = Field(description="The output waiting for the decision.")


class PlanLinkAnswer(RootModel[PlanLinkPending | LinkIgnored]):
    """What a GET of a plan link answers a JSON client: nothing was decided."""


class StepLinkAnswer(RootModel[StepLinkPending | LinkIgnored]):
    """What a GET of a step link answers a JSON client: nothing was decided."""


def scanner_markers_text() -> str:
    """The scanner rule and list as the API docs publish them (from the guard's own list)."""
    markers = ", ".join(f"`{marker}`" for marker in BOT_USER_AGENT_MARKERS)
    return (
        "**Scanners never decide.** A `GET` whose `User-Agent` is empty or contains one of "
        f"these markers (case-insensitive) answers 200 and decides nothing: {markers}. "
        "`HEAD` never decides either. A script decides with `POST`, whatever its user agent."
    )


_SEE_OTHER = {
    "description": "Decided: on to the workflow's dashboard page, which says what was "
    "decided and what comes next (to a browser that is not signed in as well).",
    "headers": {
        "Location": {
            "description": "`/dashboard/workflows/{id}`",
            "schema": {"type": "string"},
        }
    },
}
_REFUSED = {
    **error_response(400),
    "content": {"application/json": {}, "text/html": HTML_PAGE},
}
_REFUSED_OR_INVALID: dict[int | str, dict[str, Any]] = {
    400: _REFUSED,
    303: _SEE_OTHER,
}
_POST_ANSWERS: dict[int | str, dict[str, Any]] = {
    **_REFUSED_OR_INVALID,
    403: {
        **error_response(
            403,
            "The browser's session cookie came without the session's CSRF token "
            "(`csrf_failed`): with a session, the decision is that person's. Nothing decided.",
        ),
        "content": {"application/json": {}, "text/html": HTML_PAGE},
    },
}


def _get_responses(answer: type[RootModel[Any]]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "model": answer,
            "description": "Nothing decided: a confirm page (`text/html`, for browsers), what "
            "would be decided (JSON), or a scanner's visit (JSON, `code: ignored`).",
            "content": {"text/html": HTML_PAGE},
        },
        **_REFUSED_OR_INVALID,
    }


def _dashboard_url(workflow_id: str) -> str:
    return f"/dashboard/workflows/{workflow_id}"


def _message(
    request: Request,
    *,
    status_code: int,
    heading: str,
    message: str,
    code: str,
    workflow_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    if wants_html(request):
        return render(
            request,
            "link_message.html",
            {
                "heading": heading,
                "message": message,
                "failed": status_code >= 400,
                "dashboard_url": _dashboard_url(workflow_id) if workflow_id else None,
            },
            status_code=status_code,
            headers=LINK_HEADERS,
        )
    body: dict[str, Any] = (
        {"error": message, "code": code}
        if status_code >= 400
        else {"message": message, "code": code}
    )
    return JSONResponse({**body, **(extra or {})}, status_code=status_code, headers=LINK_HEADERS)


def _refused(request: Request, error: AppError, workflow_id: str | None) -> Response:
    # Every refusal of a link is a 400 with its reason, whatever status the service used.
    return _message(
        request,
        status_code=400,
        heading="This link can't be used",
        message=error.message,
        code=error.error_code,
        workflow_id=workflow_id,
    )


async def _cookie_refusal(
    request: Request, settings: Settings, auth: AuthContext | None, workflow_id: str | None
) -> Response | None:
    """A POST that comes with a live session cookie is recorded as that person's decision, so
    the cookie needs its CSRF token (the confirm pages carry it): a 403 page, else None. With
    no session, the link's token alone decides."""
    if auth is None:
        return None
    try:
        await verify_session_csrf(request, settings)
    except AppError as error:
        return _message(
            request,
            status_code=error.status,
            heading="This form has expired",
            message=error.message,
            code=error.error_code,
            workflow_id=workflow_id,
        )
    return None


def _scanner_page(request: Request) -> Response:
    return _message(
        request,
        status_code=200,
        heading="Nothing was decided",
        message="This link was opened by an automated client, so nothing was decided. "
        "Open it in your browser to decide.",
        code=ErrorCode.IGNORED,
    )


def _redirect(request: Request, workflow_id: str, notice: str) -> Response:
    response = RedirectResponse(_dashboard_url(workflow_id), status_code=303, headers=LINK_HEADERS)
    return flash(response, request.app.state.settings, notice)


async def _load_plan_link(
    db: Database, settings: Settings, workflow_id: str, token: str | None
) -> tuple[tokens.PlanClaims, Workflow]:
    """Verify a plan link against its workflow without deciding anything."""
    claims = tokens.verify_plan(settings, token)
    if claims.workflow_id != workflow_id:
        raise tokens.LinkError(
            "This link belongs to another workflow.", code=ErrorCode.LINK_INVALID
        )
    async with db.read() as session:
        workflow = await workflow_repository.get_with_steps(session, workflow_id)
        if workflow is None:
            raise tokens.LinkError("This workflow no longer exists.", code=ErrorCode.LINK_INVALID)
        await _check_recipient(session, claims, workflow.team_id)
    return claims, workflow


async def _check_recipient(
    session: AsyncSession, claims: tokens.PlanClaims | tokens.StepClaims, team_id: str
) -> None:
    """A link emailed to a member decides only while that member may decide for the team:
    removing them, or making them a member, ends the links they were sent (docs/api.md)."""
    if claims.recipient_id is None:  # sent before links named their recipient
        return
    membership = await auth_repository.get_membership(session, team_id, claims.recipient_id)
    if membership is None or not membership.role.at_least(Role.ADMIN):
        raise tokens.LinkError(
            "This link was sent to someone who can no longer decide for this team. An owner "
            "or admin can send a fresh approval email from the dashboard.",
            code=ErrorCode.LINK_INVALID,
        )


def _link_actor(
    request: Request, claims: tokens.PlanClaims | tokens.StepClaims, auth: AuthContext | None
) -> Actor:
    """Who decides through a link, for the audit trail: the signed-in person, else the member
    the link was emailed to (its ``recipientId``)."""
    return Actor.email_link(
        request.headers.get("user-agent"),
        user_id=auth.user_id if auth else claims.recipient_id,
        email=auth.email if auth else None,
    )


async def _approve_plan(
    request: Request, claims: tokens.PlanClaims, workflow_id: str, auth: AuthContext | None
) -> Response:
    """Approve the plan, then 303 to its dashboard page with what was decided (a notice that
    page shows whether or not the browser is signed in)."""
    db: Database = request.app.state.db
    async with db.write() as session:
        activation = await workflow_service.activate(
            session,
            request.app.state.settings,
            workflow_id,
            revision=claims.revision,
            actor=_link_actor(request, claims, auth),
            token_id=claims.jti,
        )
    return _redirect(request, workflow_id, workflow_service.plan_approved_notice(activation))


def _may_decide_in_session(auth: AuthContext | None, team_id: str) -> bool:
    role = auth.role_in(team_id) if auth else None
    return role is not None and role.at_least(Role.ADMIN)


@router.head("/{workflow_id}/approve", include_in_schema=False)
async def plan_link_head(workflow_id: str) -> Response:
    """HEAD never decides (scanners and previews use it)."""
    return Response(status_code=200, headers=LINK_HEADERS)


@router.get(
    "/{workflow_id}/approve",
    operation_id="openPlanLink",
    summary="Open a plan approval link",
    response_model=None,
    responses=_get_responses(PlanLinkAnswer),
    description=(
        "The plan approval link from the email (valid `SIGNOFF_PLAN_LINK_TTL_HOURS`, 24 h by "
        "default), no session needed. In the default "
        "`confirm` mode a GET decides only for a browser signed in as an owner or admin of the "
        "team (then 303); anyone else gets a confirm page (HTML) or, asking for JSON, what "
        "would be decided. With `SIGNOFF_LINK_MODE=one-click` a GET decides (303). A link "
        "that can no longer decide answers 400 (HTML for browsers, else JSON).\n\n"
        + scanner_markers_text()
    ),
)
async def plan_link_get(
    workflow_id: str,
    request: Request,
    db: DB,
    settings: Config,
    auth: MaybeAuth,
    token: Token = None,
) -> Response:
    """The plan approval link from the email. See the module docstring for modes."""
    if is_bot(request.headers.get("user-agent")):
        return _scanner_page(request)
    try:
        claims, workflow = await _load_plan_link(db, settings, workflow_id, token)
        decide_now = settings.link_mode == "one-click" or _may_decide_in_session(
            auth, workflow.team_id
        )
        if decide_now:
            return await _approve_plan(request, claims, workflow_id, auth)
        # Show what would be decided; say at once if it can no longer be.
        workflow_service.check_plan_decidable(workflow, claims.revision)
    except AppError as error:
        return _refused(request, error, workflow_id)
    if not wants_html(request):
        return JSONResponse(
            {
                "message": "Nothing was decided yet: POST to this URL to approve the plan.",
                "workflowId": workflow.id,
                "title": workflow.title,
            },
            headers=LINK_HEADERS,
        )
    return render(
        request,
        "link_plan_confirm.html",
        {
            "workflow": workflow,
            "steps": workflow.steps,
            "schedule_description": workflow.schedule_description,
            "action_url": str(request.url),
        },
        headers=LINK_HEADERS,
    )


@router.post(
    "/{workflow_id}/approve",
    operation_id="approvePlanLink",
    summary="Approve a plan through its link",
    response_model=None,
    status_code=303,
    responses=_POST_ANSWERS,
    description=(
        "Approve the plan (the confirm page's button, or a script): the workflow becomes "
        "active and its first run starts, then 303 to the dashboard. A POST always decides, "
        "whatever the user agent.\n\n" + scanner_markers_text()
    ),
)
async def plan_link_post(
    workflow_id: str,
    request: Request,
    db: DB,
    settings: Config,
    auth: MaybeAuth,
    token: Token = None,
) -> Response:
    """Approve the plan (the confirm page's button, or an API client): 303 to the dashboard."""
    if refusal := await _cookie_refusal(request, settings, auth, workflow_id):
        return refusal
    try:
        claims, _workflow = await _load_plan_link(db, settings, workflow_id, token)
        return await _approve_plan(request, claims, workflow_id, auth)
    except AppError as error:
        return _refused(request, error, workflow_id)


# -- step decision links: /api/workflows/resume?token=&action=approve|reject&note= ---------------

Action = Annotated[str | None, Query(description="`approve` or `reject`.")]
Note = Annotated[
    str | None,
    Query(description=f"Feedback for a reject, at most {MAX_NOTE_LENGTH} characters."),
]


def _check_note(note: str | None) -> None:
    # The same refusal on every route and for a query or a form note: never cut silently.
    if note is not None and len(note) > MAX_NOTE_LENGTH:
        raise tokens.LinkError(
            f"The feedback is longer than {MAX_NOTE_LENGTH:,} characters; shorten it.",
            code=ErrorCode.NOTE_TOO_LONG,
        )


async def _load_step_link(
    db: Database, settings: Settings, token: str | None, action: str | None
) -> tuple[tokens.StepClaims, Run, RunStep]:
    """Verify a step link and check it can still decide, without deciding anything."""
    claims = tokens.verify_step(settings, token)
    if action not in ("approve", "reject"):
        raise tokens.LinkError(
            "This link does not say whether to approve or request changes.",
            code=ErrorCode.LINK_INVALID,
        )
    async with db.read() as session:
        run = await session.get(Run, claims.run_id)
        if (
            run is None
            or run.workflow_id != claims.workflow_id
            or run.conversation_id != claims.conversation_id
        ):
            raise tokens.LinkError("This link does not match any run.", code=ErrorCode.LINK_INVALID)
        await _check_recipient(session, claims, run.team_id)
        step = await run_service.check_decidable(session, run, claims.step_index, claims.attempt)
    return claims, run, step


async def _decide_step(
    request: Request,
    claims: tokens.StepClaims,
    action: str,
    note: str | None,
    auth: AuthContext | None,
) -> Response:
    """Decide, then 303 to the workflow's dashboard page with what was decided and what comes
    next (shown there whether or not the browser is signed in)."""
    db: Database = request.app.state.db
    async with db.write() as session:
        decision = await run_service.decide(
            session,
            request.app.state.settings,
            run_id=claims.run_id,
            step_index=claims.step_index,
            attempt=claims.attempt,
            action=action,
            note=note,
            actor=_link_actor(request, claims, auth),
            token_id=claims.jti,
        )
        workflow = await session.get(Workflow, decision.run.workflow_id)
        assert workflow is not None
        notice = await run_service.decision_notice(session, decision, workflow.title)
    return _redirect(request, decision.run.workflow_id, notice)


@router.head("/resume", include_in_schema=False)
async def step_link_head() -> Response:
    """HEAD never decides."""
    return Response(status_code=200, headers=LINK_HEADERS)


@router.get(
    "/resume",
    operation_id="openStepLink",
    summary="Open a step decision link",
    response_model=None,
    responses=_get_responses(StepLinkAnswer),
    description=(
        "The Approve / Request changes link of a step approval email (valid "
        "`SIGNOFF_STEP_LINK_TTL_HOURS`, 2 h by default), no session "
        "needed. In the default `confirm` mode a GET decides only for a browser signed in as "
        "an owner or admin of the team (a reject also needs a non-empty `note`), then 303; "
        "anyone else gets a confirm page (HTML) or, asking for JSON, what would be decided. "
        "With `SIGNOFF_LINK_MODE=one-click` a GET decides (303). A link that can no longer "
        f"decide, or a `note` over {MAX_NOTE_LENGTH} characters, answers 400.\n\n"
        + scanner_markers_text()
    ),
)
async def step_link_get(
    request: Request,
    db: DB,
    settings: Config,
    auth: MaybeAuth,
    token: Token = None,
    action: Action = None,
    note: Note = None,
) -> Response:
    """The Approve / Request changes link of a step approval email."""
    if is_bot(request.headers.get("user-agent")):
        return _scanner_page(request)
    workflow_id: str | None = None
    try:
        _check_note(note)
        claims, run, step = await _load_step_link(db, settings, token, action)
        workflow_id = run.workflow_id
        assert action is not None
        signed_in_admin = _may_decide_in_session(auth, run.team_id)
        decide_now = settings.link_mode == "one-click" or (
            signed_in_admin and (action == "approve" or bool(note and note.strip()))
        )
        if decide_now:
            return await _decide_step(request, claims, action, note, auth)
    except AppError as error:
        return _refused(request, error, workflow_id)
    if not wants_html(request):
        return JSONResponse(
            {
                "message": f"Nothing was decided yet: POST to this URL to {action} the step.",
                "runId": run.id,
                "stepIndex": step.step_index,
                "attempt": step.attempt,
                "output": step.output,
            },
            headers=LINK_HEADERS,
        )
    base = f"/api/workflows/resume?{urlencode({'token': token})}"
    async with db.read() as session:
        workflow = await session.get(Workflow, run.workflow_id)
    return render(
        request,
        "link_step_confirm.html",
        {
            "workflow": workflow,
            "run": run,
            "step": step,
            "action": action,
            "note": note or "",
            "approve_url": f"{base}&action=approve",
            "reject_url": f"{base}&action=reject",
            "image_url": f"/api/workflows/resume/image?{urlencode({'token': token})}"
            if step.tool_name == "generate_image"
            else None,
        },
        headers=LINK_HEADERS,
    )


@router.post(
    "/resume",
    operation_id="decideStepLink",
    summary="Decide a step through its link",
    response_model=None,
    status_code=303,
    responses=_POST_ANSWERS,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {"note": {"type": "string"}},
                    }
                }
            },
        }
    },
    description=(
        "Approve, or request changes with the `note` (a query parameter, or a form field "
        f"`note`, at most {MAX_NOTE_LENGTH} characters), then 303 to the dashboard. A POST "
        "always decides, whatever the user agent.\n\n" + scanner_markers_text()
    ),
)
async def step_link_post(
    request: Request,
    db: DB,
    settings: Config,
    auth: MaybeAuth,
    token: Token = None,
    action: Action = None,
    note: Note = None,
) -> Response:
    """Decide (the confirm page's buttons, or an API client): 303 to the dashboard."""
    if refusal := await _cookie_refusal(request, settings, auth, None):
        return refusal
    workflow_id: str | None = None
    try:
        if note is None and "form" in request.headers.get("content-type", ""):
            form = await request.form()
            value = form.get("note")
            note = value if isinstance(value, str) else None
        _check_note(note)
        claims, run, _step = await _load_step_link(db, settings, token, action)
        workflow_id = run.workflow_id
        assert action is not None
        return await _decide_step(request, claims, action, note, auth)
    except AppError as error:
        return _refused(request, error, workflow_id)


@router.get("/resume/image", include_in_schema=False)
async def step_link_image(db: DB, settings: Config, token: Token = None) -> Response:
    """The pending image of a step, shown on the confirm page through the link's own token
    (the person deciding may have no session)."""
    claims = tokens.verify_step(settings, token)
    async with db.read() as session:
        asset = await run_repository.pending_asset(
            session, claims.run_id, claims.step_index, claims.attempt
        )
        blob = await run_repository.asset_blob(session, asset.id) if asset is not None else None
    if asset is None or blob is None:
        raise NotFound("No image is waiting for this decision.", code=ErrorCode.ASSET_NOT_FOUND)
    return Response(blob, media_type=asset.mime_type, headers=LINK_HEADERS)
