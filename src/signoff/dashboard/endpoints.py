"""Dashboard pages (server-rendered): accounts, workflows, runs, live updates.

Every action calls the same service function as the API call it stands for, with the page's
signed-in user, so a button here obeys exactly the rules, roles and emails of the API. Errors
the services raise become pages (:class:`~signoff.dashboard.pages.PageRoute`); forms
re-render with the problem and a 4xx status, nothing changed; a success redirects (303) to the
page that shows the result.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.audit.dependencies import CurrentActor
from signoff.auth import service as auth_service
from signoff.auth.csrf import verify_same_origin
from signoff.auth.dependencies import CallerSession, clear_session_cookie, set_session_cookie
from signoff.auth.passwords import hash_password
from signoff.auth.schemas import MIN_PASSWORD_LENGTH, SignupRequest
from signoff.auth.service import AuthContext
from signoff.dashboard import formatting, live, plan_form
from signoff.dashboard.pages import (
    MaybePageAuth,
    PageAuth,
    PageRoute,
    confirm_page,
    flash,
    login_redirect,
    read_flash,
    render,
)
from signoff.db import Database
from signoff.dependencies import DB, Client, Config
from signoff.errors import Conflict, TooManyRequests, Unprocessable, UpstreamFailed
from signoff.kit.clock import utc_now
from signoff.kit.cron import (
    ScheduleError,
    check_timezone,
    describe,
    next_fire,
    normalise_schedule,
    timezone_names,
)
from signoff.kit.storable import MAX_DB_INT
from signoff.llm.pricing import estimated_cost_usd
from signoff.models import (
    ACTIVE_RUN_STATUSES,
    Role,
    RunStatus,
    RunTrigger,
    StepStatus,
    WorkflowStatus,
)
from signoff.runs import repository as run_repository
from signoff.runs import service as run_service
from signoff.runs.repository import RunFilters
from signoff.runs.schemas import DecisionRequest
from signoff.scheduling.service import fire_log
from signoff.tools.registry import TOOLS
from signoff.workflows import inbox
from signoff.workflows import repository as workflow_repository
from signoff.workflows import service as workflow_service
from signoff.workflows.schemas import MAX_GOAL_LENGTH, CreateWorkflowRequest, ScheduleChange

router = APIRouter(prefix="/dashboard", include_in_schema=False, route_class=PageRoute)


FIRES_SHOWN = 20


def _safe_next(target: str | None) -> str:
    # Only our own pages: never an open redirect to another site.
    if target and target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return "/dashboard"


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _field_errors(error: ValidationError) -> dict[str, str]:
    """The first problem of each field, as a sentence for the form."""
    errors: dict[str, str] = {}
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "form"
        errors.setdefault(name, str(problem["msg"]).removeprefix("Value error, "))
    return errors


def _is_admin(auth: AuthContext, team_id: str) -> bool:
    role = auth.role_in(team_id)
    return role is not None and role.at_least(Role.ADMIN)


def _workflow_url(workflow_id: str) -> str:
    return f"/dashboard/workflows/{workflow_id}"


def _run_url(workflow_id: str, run_id: int) -> str:
    return f"/dashboard/workflows/{workflow_id}/runs/{run_id}"


def _with_inbox(auth: AuthContext, progress: live.Progress) -> live.Progress:
    """A page's progress and the viewer's inbox together: a live page also follows the count
    in its navigation."""

    async def rows(session: AsyncSession) -> list[tuple[Any, ...]]:
        return [*await progress(session), *await inbox.progress(session, auth)]

    return rows


def _live_version(request: Request, rows: list[tuple[Any, ...]]) -> str:
    """The version a live page embeds: its progress and the inbox keys ``page_auth`` read."""
    return live.version([*rows, *getattr(request.state, "inbox_rows", [])])


# --- Accounts ---------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", dependencies=[Depends(verify_same_origin)])
async def login_submit(
    request: Request,
    db: DB,
    settings: Config,
    client: Client,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    target = _safe_next(next)
    email = email.strip().lower()
    try:
        signed_in = await auth_service.authenticate(
            db, settings, email=email, password=password, client=client
        )
        token = signed_in.token if signed_in else None
    except TooManyRequests as error:
        return render(
            request, "login.html", {"next": target, "error": error.message}, status_code=429
        )
    if token is None:
        return render(
            request,
            "login.html",
            {"next": target, "error": "Wrong email or password."},
            status_code=401,
        )
    response = _see(target)
    set_session_cookie(response, settings, token)
    return response


def _signup_form(
    request: Request, values: dict[str, str], errors: dict[str, str], status_code: int = 200
) -> Response:
    return render(
        request,
        "signup.html",
        {"values": values, "errors": errors, "min_password": MIN_PASSWORD_LENGTH},
        status_code=status_code,
    )


@router.get("/signup")
async def signup_page(request: Request) -> Response:
    return _signup_form(request, {"name": "", "email": ""}, {})


@router.post("/signup", dependencies=[Depends(verify_same_origin)])
async def signup_submit(
    request: Request,
    db: DB,
    settings: Config,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> Response:
    values = {"name": name, "email": email}
    try:
        body = SignupRequest(email=email.strip(), password=password, name=name.strip() or None)
    except ValidationError as error:
        return _signup_form(request, values, _field_errors(error), 422)
    try:
        # As the API's signup: account, own team, verification email, session cookie.
        password_hash = await hash_password(settings, body.password)  # before the write
        async with db.write() as session:
            user, _team = await auth_service.signup(
                session, settings, email=body.email, password_hash=password_hash, name=body.name
            )
            token = await auth_service.create_session(session, settings, user)
    except Conflict as error:
        return _signup_form(request, values, {"email": error.message}, 409)
    response = _see("/dashboard")
    set_session_cookie(response, settings, token)
    return response


@router.post("/logout")
async def logout(session_id: CallerSession, db: DB, settings: Config) -> Response:
    async with db.write() as session:
        await auth_service.revoke_session(session, session_id)
    response = _see("/dashboard/login")
    clear_session_cookie(response, settings)
    return response


# --- Workflows ----------------------------------------------------------------------------


WORKFLOWS_PAGE = 50


@router.get("")
async def home(
    request: Request,
    auth: PageAuth,
    db: DB,
    settings: Config,
    after: Annotated[str | None, Query(max_length=200)] = None,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The team's workflows, 50 a page (``after``/``before``: the next/previous page's cursor)."""
    team_id = auth.current_team_id
    async with db.read() as session:
        page = await workflow_service.list_page(
            session,
            settings,
            team_id,
            limit=WORKFLOWS_PAGE,
            cursor=before or after,
            backwards=before is not None,
        )
        version = _live_version(request, await workflow_repository.team_progress(session, team_id))
    return render(
        request,
        "workflows.html",
        {
            "workflows": page.items,
            "next_cursor": page.next_cursor,
            "previous_cursor": page.previous_cursor,
            "live_url": "/dashboard/events",
            "live_version": version,
        },
    )


@router.get("/events")
async def team_events(request: Request, auth: PageAuth, db: DB) -> Response:
    """Server-Sent Events: the version of the workflows list, whenever it changes."""
    team_id = auth.current_team_id
    return live.stream(
        request,
        db,
        _with_inbox(auth, lambda session: workflow_repository.team_progress(session, team_id)),
    )


def schedule_preview_text(schedule: str, timezone: str) -> tuple[str, bool]:
    """The schedule in words with its next fire time, or what is wrong with it."""
    if not schedule.strip():
        return "No schedule: the workflow runs when someone starts it.", True
    try:
        expression = normalise_schedule(schedule)
        zone = check_timezone(timezone.strip() or "UTC")
    except ScheduleError as error:
        return f"Not a schedule yet: {error}.", False
    upcoming = next_fire(expression, zone, utc_now()).astimezone(ZoneInfo(zone))
    return (
        f"{describe(expression)} ({zone}). Next run: "
        f"{upcoming.strftime('%a %d %b %Y, %H:%M')} {upcoming.tzname()}.",
        True,
    )


@router.get("/schedule-preview")
async def schedule_preview(auth: PageAuth, schedule: str = "", timezone: str = "UTC") -> Response:
    """The new-workflow form's live preview of a schedule, in words (JSON)."""
    text, valid = schedule_preview_text(schedule[:200], timezone[:100])
    return JSONResponse({"text": text, "valid": valid}, headers={"Cache-Control": "no-store"})


def _new_workflow_form(
    request: Request,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    preview, valid = schedule_preview_text(values["schedule"], values["timezone"])
    return render(
        request,
        "new_workflow.html",
        {
            "values": values,
            "errors": errors,
            "preview": preview,
            "preview_valid": valid,
            "timezones": timezone_names(),
            "max_goal": MAX_GOAL_LENGTH,
        },
        status_code=status_code,
    )


@router.get("/workflows/new")
async def new_workflow_page(request: Request, auth: PageAuth) -> Response:
    return _new_workflow_form(request, {"goal": "", "schedule": "", "timezone": "UTC"}, {})


@router.post("/workflows")
async def create_workflow(
    request: Request,
    auth: PageAuth,
    db: DB,
    settings: Config,
    goal: Annotated[str, Form()] = "",
    schedule: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "UTC",
) -> Response:
    values = {"goal": goal, "schedule": schedule, "timezone": timezone}
    try:
        body = CreateWorkflowRequest(
            goal=goal, schedule=schedule or None, timezone=timezone.strip() or "UTC"
        )
    except ValidationError as error:
        return _new_workflow_form(request, values, _field_errors(error), 422)
    try:
        created = await workflow_service.create(db, request.app.state.llm, settings, auth, body)
    except UpstreamFailed as error:
        return _new_workflow_form(request, values, {"form": error.message}, error.status)
    return flash(_see(_workflow_url(created.workflow_id)), settings, created.message)


async def _workflow_page(
    request: Request,
    auth: PageAuth,
    db: Database,
    workflow_id: str,
    *,
    schedule_form: dict[str, str] | None = None,
    schedule_error: str | None = None,
    status_code: int = 200,
    runs_before: int | None = None,
) -> Response:
    async with db.read() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id)
        runs = await run_repository.list_runs(
            session, workflow.id, limit=workflow_service.RUNS_IN_DETAIL, before_number=runs_before
        )
        latest = (
            runs
            if runs_before is None
            else await run_repository.list_runs(session, workflow.id, limit=1)
        )
        fires = await fire_log(session, workflow.id, FIRES_SHOWN)
        version = _live_version(
            request, await workflow_repository.workflow_progress(session, workflow.id)
        )
    # At most one run is active, and it is the latest.
    active = latest[0] if latest and latest[0].status in ACTIVE_RUN_STATUSES else None
    # Older runs, a page at a time (newest first), when this page is full.
    older = (
        runs[-1].run_number
        if len(runs) == workflow_service.RUNS_IN_DETAIL and runs[-1].run_number > 1
        else None
    )
    return render(
        request,
        "workflow.html",
        {
            "workflow": workflow,
            "steps": workflow.steps,
            "tools": TOOLS,
            "runs": runs,
            "costs": {
                run.id: estimated_cost_usd(
                    request.app.state.settings, run.model_name, run.input_tokens, run.output_tokens
                )
                for run in runs
            },
            "runs_paged": runs_before is not None,
            "older_runs": older,
            "active_run": active,
            "fires": fires,
            "can_admin": _is_admin(auth, workflow.team_id),
            "schedule_description": workflow.schedule_description,
            "schedule_form": schedule_form
            or {"schedule": workflow.schedule or "", "timezone": workflow.timezone},
            "schedule_error": schedule_error,
            "timezones": timezone_names(),
            "live_url": f"{_workflow_url(workflow.id)}/events",
            "live_version": version,
        },
        status_code=status_code,
    )


@router.get("/workflows/{workflow_id}")
async def workflow_page(
    workflow_id: str,
    request: Request,
    auth: MaybePageAuth,
    db: DB,
    runs_before: Annotated[int | None, Query(ge=2)] = None,
) -> Response:
    if auth is None:
        # Where an email link's decision lands (docs/api.md, Email links): a visitor who is
        # not signed in sees what was decided and what comes next, then may sign in.
        result = read_flash(request)
        if result is None:
            return login_redirect(request)
        return render(
            request,
            "decision_result.html",
            {"result": result, "notice": None, "page_url": _workflow_url(workflow_id)},
            headers={"Cache-Control": "no-store"},
        )
    return await _workflow_page(request, auth, db, workflow_id, runs_before=runs_before)


@router.get("/workflows/{workflow_id}/events")
async def workflow_events(workflow_id: str, request: Request, auth: PageAuth, db: DB) -> Response:
    """Server-Sent Events: the version of this workflow's pages, whenever it changes."""
    async with db.read() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id)
    return live.stream(
        request,
        db,
        _with_inbox(
            auth, lambda session: workflow_repository.workflow_progress(session, workflow.id)
        ),
    )


@router.post("/workflows/{workflow_id}/activate")
async def activate(
    workflow_id: str,
    auth: PageAuth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
    next: Annotated[str | None, Form()] = None,
    revision: Annotated[int | None, Form(ge=1, le=MAX_DB_INT)] = None,
) -> Response:
    async with db.write() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id, Role.ADMIN)
        # The revision the page showed: a plan edited since is not approved unseen.
        activation = await workflow_service.approve_signed_in(
            session, settings, workflow, actor, revision
        )
    notice = workflow_service.plan_approved_notice(activation)
    target = _safe_next(next) if next else _workflow_url(workflow_id)
    return flash(_see(target), settings, notice)


@router.post("/workflows/{workflow_id}/run")
async def run_now(workflow_id: str, auth: PageAuth, db: DB, settings: Config) -> Response:
    async with db.write() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id)
        run, _ = await run_service.start_run(
            session, settings, workflow, trigger=RunTrigger.MANUAL, started_by=auth.user_id
        )
    return _see(_run_url(workflow_id, run.id))


@router.post("/workflows/{workflow_id}/archive")
async def archive(
    workflow_id: str,
    request: Request,
    auth: PageAuth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    if not confirmed:
        async with db.read() as session:
            workflow = await workflow_service.get_visible(session, auth, workflow_id, Role.ADMIN)
        return confirm_page(
            request,
            question=formatting.archive_question(workflow.title),
            button="Archive workflow",
            back=_workflow_url(workflow_id),
        )
    async with db.write() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id, Role.ADMIN)
        await workflow_service.archive(session, workflow, actor)
    notice = "Archived: this workflow no longer runs, by hand or on schedule."
    return flash(_see(_workflow_url(workflow_id)), settings, notice)


@router.post("/workflows/{workflow_id}/approval-email")
async def resend_plan_email(workflow_id: str, auth: PageAuth, db: DB, settings: Config) -> Response:
    async with db.write() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id)
        sent = await workflow_service.resend_plan_email(session, settings, workflow)
    return flash(_see(_workflow_url(workflow_id)), settings, sent.message)


@router.post("/workflows/{workflow_id}/schedule")
async def change_schedule(
    workflow_id: str,
    request: Request,
    auth: PageAuth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
    schedule: Annotated[str, Form()] = "",
    timezone: Annotated[str, Form()] = "UTC",
) -> Response:
    values = {"schedule": schedule, "timezone": timezone}
    try:
        change = ScheduleChange(schedule=schedule, timezone=timezone.strip() or "UTC")
    except ValidationError as error:
        problem = "; ".join(f"{field}: {text}" for field, text in _field_errors(error).items())
        return await _workflow_page(
            request,
            auth,
            db,
            workflow_id,
            schedule_form=values,
            schedule_error=f"Nothing changed. {problem.capitalize()}.",
            status_code=422,
        )
    async with db.write() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id, Role.ADMIN)
        await workflow_service.change_schedule(session, workflow, change, actor)
    notice = (
        f"Schedule saved: {describe(workflow.schedule)} ({workflow.timezone})."
        if workflow.schedule
        else "Schedule removed: the workflow runs when someone starts it."
    )
    return flash(_see(_workflow_url(workflow_id)), settings, notice)


def _plan_page(
    request: Request,
    workflow: Any,
    rows: list[plan_form.StepRow],
    problems: list[str],
    status_code: int = 200,
) -> Response:
    # Always one blank fieldset at the end, to add a step.
    shown = [*rows, plan_form.StepRow()] if not rows or rows[-1].description else rows
    return render(
        request,
        "plan_edit.html",
        {"workflow": workflow, "rows": shown, "problems": problems, "tools": TOOLS},
        status_code=status_code,
    )


@router.get("/workflows/{workflow_id}/plan")
async def plan_page(workflow_id: str, request: Request, auth: PageAuth, db: DB) -> Response:
    async with db.read() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id, Role.ADMIN)
    if workflow.status != WorkflowStatus.DRAFT:
        raise Conflict(f"Only a draft's plan can be edited; this workflow is {workflow.status}.")
    return _plan_page(request, workflow, plan_form.rows_of(workflow.steps), [])


@router.post("/workflows/{workflow_id}/plan")
async def plan_submit(
    workflow_id: str,
    request: Request,
    auth: PageAuth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
) -> Response:
    async with db.read() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id, Role.ADMIN)
    rows = plan_form.read_rows(await request.form())
    edit, problems = plan_form.to_request(rows)
    if edit is None:
        return _plan_page(request, workflow, rows, problems, 422)
    try:
        async with db.write() as session:
            edited = await workflow_service.get_visible(session, auth, workflow_id, Role.ADMIN)
            await workflow_service.edit_steps(session, settings, edited, edit, actor)
    except Unprocessable as error:
        found = [str(item["message"]) for item in error.details or []] or [error.message]
        return _plan_page(request, workflow, rows, found, 422)
    notice = (
        f"Plan saved as revision {edited.plan_revision}. A fresh approval email went out; "
        "the links in earlier emails no longer work."
    )
    return flash(_see(_workflow_url(workflow_id)), settings, notice)


# --- Runs ---------------------------------------------------------------------------------


@router.get("/workflows/{workflow_id}/runs/{run_id}")
async def run_page(
    workflow_id: str, run_id: int, request: Request, auth: PageAuth, db: DB, settings: Config
) -> Response:
    async with db.read() as session:
        workflow = await workflow_service.get_visible(session, auth, workflow_id)
        run = await run_service.get_visible(session, auth, workflow.id, run_id, Role.MEMBER)
        detail = await run_service.detail(session, settings, run)
        version = _live_version(
            request, await workflow_repository.workflow_progress(session, workflow.id)
        )
    statuses = [step.status for step in detail.steps]
    return render(
        request,
        "run.html",
        {
            "workflow": workflow,
            "run": detail,
            "stopped": detail.failure_reason == run_service.STOPPED_BY_USER,
            "warned_steps": sum(
                1 for step in detail.steps if step.warnings and step.status == StepStatus.COMPLETED
            ),
            # Reruns need an active workflow and an ended run (service.rerun says why).
            "rerun_steps": run_service.rerunnable_steps(detail, statuses)
            if workflow.status == WorkflowStatus.ACTIVE
            else 0,
            "retry_step": run_service.retry_step_index(detail, statuses)
            if detail.status == RunStatus.FAILED and workflow.status == WorkflowStatus.ACTIVE
            else None,
            "can_admin": _is_admin(auth, workflow.team_id),
            "editable_tools": run_service.EDITABLE_TOOLS,
            "live_url": f"{_workflow_url(workflow.id)}/events",
            "live_version": version,
        },
    )


@router.post("/workflows/{workflow_id}/runs/{run_id}/decision")
async def decide(
    workflow_id: str,
    run_id: int,
    auth: PageAuth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
    action: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    edited_text: Annotated[str, Form()] = "",
    attempt: Annotated[int | None, Form(ge=1, le=MAX_DB_INT)] = None,
    next: Annotated[str | None, Form()] = None,
) -> Response:
    """The run page's and the inbox's decision: approve (with the edited text, if the approver
    changed it) or request changes, on the attempt the page showed."""
    # Browsers send a textarea's line breaks as CRLF (HTML's form encoding); the text shown
    # had LF, so an untouched field compares equal and an edited one keeps the LF it showed.
    edited = edited_text.replace("\r\n", "\n")
    try:
        body = DecisionRequest(
            action=action,
            note=note or None,
            # Request changes sends the (possibly edited) field too: only Approve keeps it.
            edited_text=edited if action == "approve" and edited else None,
            attempt=attempt,
        )
    except ValidationError as error:
        raise Unprocessable("; ".join(_field_errors(error).values())) from None
    async with db.write() as session:
        run = await run_service.get_visible(session, auth, workflow_id, run_id, Role.ADMIN)
        decision = await run_service.decide_signed_in(session, settings, run, body, actor)
        workflow = await workflow_service.get_visible(session, auth, workflow_id)
        notice = await run_service.decision_notice(session, decision, workflow.title)
    target = _safe_next(next) if next else _run_url(workflow_id, run_id)
    return flash(_see(target), settings, notice)


@router.post("/workflows/{workflow_id}/runs/{run_id}/stop")
async def stop(
    workflow_id: str,
    run_id: int,
    request: Request,
    auth: PageAuth,
    actor: CurrentActor,
    db: DB,
    settings: Config,
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    if not confirmed:
        async with db.read() as session:
            run = await run_service.get_visible(session, auth, workflow_id, run_id, Role.MEMBER)
        return confirm_page(
            request,
            question=formatting.stop_question(run.run_number),
            button="Stop run",
            back=_run_url(workflow_id, run_id),
        )
    async with db.write() as session:
        run = await run_service.get_visible(session, auth, workflow_id, run_id, Role.MEMBER)
        await run_service.stop_run(session, run.id, actor)
    return flash(_see(_run_url(workflow_id, run_id)), settings, "Run stopped.")


@router.post("/workflows/{workflow_id}/runs/{run_id}/approval-email")
async def resend_step_email(
    workflow_id: str, run_id: int, auth: PageAuth, db: DB, settings: Config
) -> Response:
    async with db.write() as session:
        run = await run_service.get_visible(session, auth, workflow_id, run_id, Role.MEMBER)
        sent = await run_service.resend_step_email(session, settings, run)
    return flash(_see(_run_url(workflow_id, run_id)), settings, sent.message)


# --- The approvals inbox ------------------------------------------------------------------


@router.get("/inbox")
async def inbox_page(request: Request, auth: PageAuth, db: DB) -> Response:
    """Every plan and step waiting for the viewer's decision, oldest first, decided in place."""
    async with db.read() as session:
        waiting = await inbox.items(session, auth)
    return render(
        request,
        "inbox.html",
        {
            "items": waiting.items,
            "can_decide": _is_admin(auth, auth.current_team_id),
            "tools": TOOLS,
            "live_url": "/dashboard/inbox/events",
            "live_version": _live_version(request, []),
        },
    )


@router.post("/workflows/{workflow_id}/runs/{run_id}/rerun")
async def rerun(
    workflow_id: str,
    run_id: int,
    auth: PageAuth,
    db: DB,
    settings: Config,
    from_step_index: Annotated[int, Form(ge=0, le=19)],
) -> Response:
    async with db.write() as session:
        run = await run_service.get_visible(session, auth, workflow_id, run_id, Role.MEMBER)
        workflow = await run_service.workflow_of(session, run)
        new_run, _ = await run_service.rerun(
            session, settings, workflow, run, from_step_index, started_by=auth.user_id
        )
    return flash(_see(_run_url(workflow_id, new_run.id)), settings, _rerun_notice(run, new_run))


@router.post("/workflows/{workflow_id}/runs/{run_id}/retry")
async def retry(
    workflow_id: str, run_id: int, auth: PageAuth, db: DB, settings: Config
) -> Response:
    async with db.write() as session:
        run = await run_service.get_visible(session, auth, workflow_id, run_id, Role.MEMBER)
        workflow = await run_service.workflow_of(session, run)
        new_run, _ = await run_service.retry(
            session, settings, workflow, run, started_by=auth.user_id
        )
    return flash(_see(_run_url(workflow_id, new_run.id)), settings, _rerun_notice(run, new_run))


def _rerun_notice(source: Any, run: Any) -> str:
    start = run.rerun_from_step_index + 1
    copied = (
        f"; step{'s 1–' if start > 2 else ' '}{start - 1} copied from run {source.run_number}"
        if start > 1
        else ""
    )
    return f"Run {run.run_number} started from step {start}{copied}."


# --- The team's runs, across workflows -----------------------------------------------------------


def _choice(value: str, allowed: type[RunStatus] | type[RunTrigger]) -> Any:
    """A filter's value, or None for "any" (empty) and for anything not offered."""
    return allowed(value) if value in allowed._value2member_map_ else None


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/runs")
async def runs_page(
    request: Request,
    auth: PageAuth,
    db: DB,
    status: str = "",
    workflow: Annotated[str, Query(max_length=64)] = "",
    trigger: str = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str | None, Query(max_length=80)] = None,
) -> Response:
    """The team's runs across workflows, newest first, filtered (GET /api/runs' page)."""
    first_day, last_day = _day(since), _day(until)
    filters = RunFilters(
        status=_choice(status, RunStatus),
        workflow_id=workflow or None,
        trigger=_choice(trigger, RunTrigger),
        started_from=datetime.combine(first_day, datetime.min.time(), UTC) if first_day else None,
        # The day after the last one; none after 9999-12-31 (no upper bound then).
        started_before=datetime.combine(last_day + timedelta(days=1), datetime.min.time(), UTC)
        if last_day and last_day < date.max
        else None,
        search=q.strip() or None,
    )
    after = None if cursor is None else run_service.decode_cursor(cursor)
    team_id = auth.current_team_id
    async with db.read() as session:
        rows = await run_repository.list_team_runs(
            session, team_id, filters, limit=RUNS_PAGE + 1, after=after
        )
        workflows = await run_repository.team_workflow_titles(session, team_id)
        version = _live_version(request, await workflow_repository.team_progress(session, team_id))
    values = {
        "status": status,
        "workflow": workflow,
        "trigger": trigger,
        "since": since if first_day else "",
        "until": until if last_day else "",
        "q": q,
    }
    next_cursor = (
        run_service.encode_cursor(rows[RUNS_PAGE - 1][0]) if len(rows) > RUNS_PAGE else None
    )
    return render(
        request,
        "runs.html",
        {
            "rows": rows[:RUNS_PAGE],
            "workflows": workflows,
            "values": values,
            "filtered": any(values.values()),
            "statuses": list(RunStatus),
            "triggers": list(RunTrigger),
            "next_query": {**{k: v for k, v in values.items() if v}, "cursor": next_cursor}
            if next_cursor
            else None,
            "paged": cursor is not None,
            "live_url": "/dashboard/events",
            "live_version": version,
        },
    )


@router.get("/inbox/events")
async def inbox_events(request: Request, auth: PageAuth, db: DB) -> Response:
    """Server-Sent Events: the version of what waits for the viewer, whenever it changes (every
    signed-in page follows it for the count in its navigation)."""
    return live.stream(request, db, lambda session: inbox.progress(session, auth))


RUNS_PAGE = 50
