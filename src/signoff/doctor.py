"""``signoff doctor``: a self-hoster's first command.

It checks the configuration the way the service will use it — the database and its schema, the
queue, email links, SMTP and its login, the model (one tiny request), web search — and gives one
line per check: ``ok``, ``missing`` (optional and not set: what that means) or ``failed`` (what to
fix, naming the setting). A failed check makes the command exit non-zero. Every network call has
a short timeout, and no secret the settings hold ever appears in a line.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiosmtplib
from sqlalchemy.engine import make_url

from signoff.config import ConfigError, Settings
from signoff.db import Database
from signoff.health import database_problem, database_status
from signoff.llm.models import build_model, model_label
from signoff.llm.offline import OFFLINE_MODEL_NAME
from signoff.mail.sender import parse_smtp_url
from signoff.tools.search import RetryPolicy, web_search

Status = Literal["ok", "missing", "failed"]

# Seconds for one network check: a reachable server answers far sooner.
TIMEOUT_SECONDS = 5.0
# A model may take longer to answer even a tiny request than a server takes to greet.
MODEL_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str

    def line(self) -> str:
        return f"{self.status:<8}{self.name:<14}{self.detail}"


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order an operator fixes things; secrets removed from each detail."""
    checks = [
        await _database(settings),
        _queue(settings),
        _links(settings),
        await _smtp(settings),
        await _model(settings),
        await _search(settings),
    ]
    secrets = _secrets(settings)
    return [Check(c.name, c.status, _without(secrets, c.detail)) for c in checks]


async def _database(settings: Settings) -> Check:
    url = settings.effective_database_url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:
        return Check("database", "failed", "SIGNOFF_DATABASE_URL is not a database URL")
    if settings.is_sqlite:
        path = make_url(url).database
        if path and not await asyncio.to_thread(Path(path).exists):
            return Check(
                "database", "ok", f"{shown} does not exist yet: `signoff serve` creates it"
            )
    problem = await database_problem(url)
    if problem is not None:
        return Check("database", "failed", problem)
    db = Database.from_url(url)
    try:
        _, migrations = await database_status(db)
    finally:
        await db.dispose()
    if migrations == "ok":
        return Check("database", "ok", f"{shown}, schema up to date")
    if settings.is_sqlite:  # `signoff serve` migrates SQLite when it starts
        return Check("database", "ok", f"{shown}, schema {migrations}, or start `signoff serve`")
    return Check("database", "failed", f"{shown}: schema {migrations}")


def _queue(settings: Settings) -> Check:
    if settings.queue == "inline":
        return Check("queue", "ok", "inline: `signoff serve` executes the steps")
    if settings.is_sqlite:
        return Check(
            "queue",
            "failed",
            "SIGNOFF_QUEUE=procrastinate needs a PostgreSQL SIGNOFF_DATABASE_URL",
        )
    if settings.token_secret is None:
        return Check(
            "queue",
            "failed",
            "SIGNOFF_QUEUE=procrastinate: set SIGNOFF_TOKEN_SECRET, the same for every process",
        )
    return Check("queue", "ok", "procrastinate: run `signoff worker` to execute the steps")


def _links(settings: Settings) -> Check:
    if not settings.base_url:
        return Check(
            "email links",
            "missing",
            f"SIGNOFF_BASE_URL is not set: links in emails point to {settings.public_base_url}",
        )
    if settings.token_secret is None:
        return Check(
            "email links",
            "missing",
            "SIGNOFF_TOKEN_SECRET is not set: one is generated in the data directory "
            "(development only)",
        )
    return Check("email links", "ok", f"signed, pointing to {settings.base_url}")


async def _smtp(settings: Settings) -> Check:
    if not settings.smtp_url:
        return Check(
            "smtp",
            "missing",
            "SIGNOFF_SMTP_URL is not set: emails stay in the outbox and the dashboard's "
            "Mailbox (development only)",
        )
    options = parse_smtp_url(settings.smtp_url)
    where = f"{options.hostname}:{options.port}"
    client = aiosmtplib.SMTP(
        hostname=options.hostname,
        port=options.port,
        use_tls=options.use_tls,
        start_tls=options.start_tls,
        timeout=TIMEOUT_SECONDS,
    )
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS * 2):
            await client.connect()
            try:
                if options.username is not None:
                    await client.login(options.username, options.password or "")
            finally:
                await client.quit()
    except aiosmtplib.SMTPAuthenticationError as error:
        return Check(
            "smtp", "failed", f"SIGNOFF_SMTP_URL: {where} refused the login ({error.code})"
        )
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
        return Check("smtp", "failed", f"SIGNOFF_SMTP_URL: cannot use {where} ({_reason(error)})")
    login = ", login accepted" if options.username is not None else ", no login"
    return Check("smtp", "ok", f"{where} answers{login}")


async def _model(settings: Settings) -> Check:
    if settings.llm_model.strip().lower() == OFFLINE_MODEL_NAME:
        return Check("model", "ok", "offline: the built-in model (no network, no key)")
    try:
        model = build_model(settings, offline_handlers={})
    except ConfigError as error:
        return Check("model", "failed", str(error))
    # Imported here: the model libraries are heavy, and the offline model never needs them.
    from pydantic_ai.direct import model_request
    from pydantic_ai.exceptions import ModelHTTPError
    from pydantic_ai.messages import ModelRequest

    label = model_label(model)
    try:
        async with asyncio.timeout(MODEL_TIMEOUT_SECONDS):
            await model_request(
                model,
                [ModelRequest.user_text_prompt("Reply with the single word: ok")],
                model_settings={"max_tokens": 5, "timeout": MODEL_TIMEOUT_SECONDS},
            )
    except ModelHTTPError as error:
        setting = {401: "SIGNOFF_LLM_API_KEY", 403: "SIGNOFF_LLM_API_KEY"}.get(
            error.status_code, "SIGNOFF_LLM_MODEL"
        )
        return Check("model", "failed", f"{setting}: {label} answered {error.status_code}")
    except Exception as error:  # unreachable, timed out, a malformed answer, …
        setting = "SIGNOFF_LLM_BASE_URL" if settings.llm_base_url else "SIGNOFF_LLM_MODEL"
        return Check("model", "failed", f"{setting}: {label} failed ({_reason(error)})")
    return Check("model", "ok", f"{label} answered a one-line request")


async def _search(settings: Settings) -> Check:
    provider = settings.search_provider
    if provider == "none":
        return Check(
            "search",
            "missing",
            "SIGNOFF_SEARCH_PROVIDER is not set: web_search steps tell the agent so",
        )
    policy = RetryPolicy(attempts=1, max_retry_after_seconds=0, timeout_seconds=TIMEOUT_SECONDS)
    outcome = await web_search(settings, "signoff", max_results=1, retry=policy)
    if outcome.error is not None:
        return Check("search", "failed", f"SIGNOFF_SEARCH_PROVIDER={provider}: {outcome.error}")
    return Check("search", "ok", f"{provider} answered a search")


def _reason(error: BaseException) -> str:
    """The error in one short line: its kind, and its message's first line when it has one."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def _secrets(settings: Settings) -> list[str]:
    """Every secret value the settings hold, to keep them out of the output."""
    values = [
        secret.get_secret_value()
        for secret in (
            settings.token_secret,
            settings.llm_api_key,
            settings.search_api_key,
            settings.image_api_key,
        )
        if secret is not None
    ]
    if settings.smtp_url:
        values.append(parse_smtp_url(settings.smtp_url).password or "")
    # A malformed URL: its check says so, and prints no part of it.
    with contextlib.suppress(Exception):
        values.append(make_url(settings.effective_database_url).password or "")
    return sorted((value for value in values if len(value) >= 4), key=len, reverse=True)


def _without(secrets: list[str], text: str) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
