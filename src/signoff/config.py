"""Settings, from ``SIGNOFF_*`` environment variables and an optional ``.env`` file.

Development works with no configuration at all: SQLite in ``./.signoff/``, the built-in
``offline`` model, emails kept in the outbox for the dev mailbox, and a token secret generated
once and kept in the data directory. ``SIGNOFF_ENV=production`` refuses to start without the
things a real deployment needs (a strong secret, an explicit base URL, SMTP).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from fastapi import Request
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
MIN_METRICS_TOKEN_LENGTH = 16
# Shorter "secrets" (a test's "x") would redact ordinary words from every log line.
MIN_REDACTED_LENGTH = 4


class ConfigError(ValueError):
    """The configuration cannot work; the message says what to set."""


class Settings(BaseSettings):
    # An empty variable (`SIGNOFF_X=` in .env) means the default, as README's "empty" says.
    model_config = SettingsConfigDict(
        env_prefix="SIGNOFF_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".signoff")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite in the data directory.",
    )
    base_url: str = Field(default="", description="Public URL used in email links.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    token_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SIGNOFF_TOKEN_SECRET", "WORKFLOW_TOKEN_SECRET"),
    )
    smtp_url: str = ""
    mail_from: str = ""
    llm_model: str = "offline"
    llm_base_url: str = ""
    llm_api_key: SecretStr | None = None
    link_mode: Literal["confirm", "one-click"] = "confirm"
    # How long an email link can decide: the plan's "Approve & Activate", a step's Approve /
    # Request changes (the seed's 24 h and 2 h). Changing them affects links sent afterwards.
    plan_link_ttl_hours: float = Field(default=24.0, gt=0, le=24 * 365)
    step_link_ttl_hours: float = Field(default=2.0, gt=0, le=24 * 365)
    queue: Literal["inline", "procrastinate"] = "inline"

    # Operations (README, Monitoring). /metrics is off until a token is set, then needs it as
    # a bearer token. Logs: level and format (json: one object per line, for log shippers).
    metrics_token: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    # The LLM: per-request timeout, and (offline model only) a pause per call for demos/tests.
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    offline_delay_seconds: float = Field(default=0.0, ge=0)

    # The mail sender: how often it looks for due mail, and how it retries a failing server.
    mail_poll_seconds: float = Field(default=2.0, gt=0)
    mail_max_attempts: int = Field(default=8, ge=1)
    mail_retry_base_seconds: float = Field(default=5.0, gt=0)
    mail_claim_seconds: float = Field(default=60.0, gt=0)

    # The run engine. A worker holds a lease on the step it executes and renews it while the
    # model works; a crashed worker's lease runs out and the sweep hands the step to another.
    step_lease_seconds: float = Field(default=60.0, gt=0)
    step_max_takeovers: int = Field(default=3, ge=0)
    step_max_retries: int = Field(default=3, ge=0)
    step_retry_base_seconds: float = Field(default=2.0, ge=0)
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    # Steps one process executes at once. A step spends nearly all its time waiting for the
    # model, which costs an idle asyncio task and no connection, so the bound is the CPU per
    # step (a few ms), not the count: 100 runs of 2-s steps need 50 steps/s, well within one
    # process, and a low default would queue them behind one another.
    worker_concurrency: int = Field(default=100, ge=1)
    # `signoff worker`'s own HTTP server on SIGNOFF_HOST: /healthz, and /metrics with the
    # steps it executed (behind SIGNOFF_METRICS_TOKEN, like the API's). 0: none.
    worker_port: int = Field(default=0, ge=0, le=65535)

    # The scheduler: how often it looks for due workflows, and how late a fire may be handled
    # before it counts as missed (after downtime: each missed time logged, one catch-up run).
    schedule_tick_seconds: float = Field(default=10.0, gt=0)
    schedule_grace_seconds: float = Field(default=300.0, ge=0)

    # Web search (docs/api.md, Tools): tavily, brave or searxng; none answers "not configured"
    # to the agent.
    search_provider: Literal["none", "tavily", "brave", "searxng"] = "none"
    search_api_key: SecretStr | None = None
    searxng_url: str = ""
    # Image generation: an OpenAI-compatible /v1/images/generations endpoint. Empty: with the
    # offline model a drawn placeholder, otherwise "not configured".
    image_base_url: str = ""
    image_api_key: SecretStr | None = None
    image_model: str = "gpt-image-1"
    # Fetching pages for web_extract: caps on time and size.
    fetch_timeout_seconds: float = Field(default=15.0, gt=0)
    # trafilatura costs about 3 s of CPU per MB of HTML: 2 MB is plenty for an article.
    fetch_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)

    # Per-team budgets on what costs money (README, Budgets); 0 turns one off. Counted from the
    # database, so they hold across processes and machines.
    team_plans_per_hour: int = Field(default=20, ge=0)
    team_runs_per_hour: int = Field(default=60, ge=0)
    team_tokens_per_day: int = Field(default=2_000_000, ge=0)
    # USD per million input and output tokens, by model name, over the built-in table
    # (signoff.llm.pricing): {"my-model": [0.5, 1.5]}.
    llm_prices: dict[str, tuple[float, float]] = Field(default_factory=dict)

    session_days: int = Field(default=30, ge=1)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Failed sign-ins (auth/throttle.py, docs/security.md). One address from one client: free
    # for this many, then an exponential wait up to the maximum. One client, whatever the
    # addresses: free for more. One address from all clients together: past this many, every
    # attempt on it is answered only after a pause, but never refused to a client without
    # failures of its own.
    login_free_failures: int = Field(default=5, ge=1)
    login_max_wait_seconds: int = Field(default=900, ge=1)
    login_client_free_failures: int = Field(default=50, ge=1)
    login_address_slow_after: int = Field(default=20, ge=1)
    login_slow_seconds: float = Field(default=1.0, ge=0, le=10)
    # Reverse proxies whose X-Forwarded-For is believed: addresses or networks, comma-separated.
    # Empty: the client is the TCP peer, and X-Forwarded-For is ignored.
    trusted_proxies: str = ""
    # Argon2id cost; the defaults are argon2-cffi's recommendation (RFC 9106, low-memory).
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=64)

    @field_validator("base_url")
    @classmethod
    def _strip_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("SIGNOFF_BASE_URL must start with http:// or https://")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        for entry in _split(value):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.0/8, 127.0.0.1)"
                ) from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # empty: metrics off
        if len(value.get_secret_value()) < MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(
                f"SIGNOFF_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters "
                '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("smtp://", "smtps://")):
            raise ValueError("SIGNOFF_SMTP_URL must look like smtp://user:pass@host:587")
        return value

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        secret = self.token_secret.get_secret_value() if self.token_secret else ""
        if len(secret.encode()) < MIN_SECRET_BYTES:
            problems.append(
                f"SIGNOFF_TOKEN_SECRET must be set to at least {MIN_SECRET_BYTES} bytes "
                '(e.g. python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        if not self.base_url:
            problems.append("SIGNOFF_BASE_URL must be set to the public URL of this service")
        if not self.smtp_url:
            problems.append("SIGNOFF_SMTP_URL must be set: production sends real emails")
        if problems:
            raise ConfigError("Production configuration is incomplete: " + "; ".join(problems))
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve()}/signoff.db"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def public_base_url(self) -> str:
        return self.base_url or f"http://{self.host}:{self.port}"

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return _networks(self.trusted_proxies)

    @property
    def secure_cookies(self) -> bool:
        return self.public_base_url.startswith("https://")

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction (kit.logging): API keys, the SMTP
        password, the token secret, the metrics token, the database password."""
        values = [
            secret.get_secret_value()
            for secret in (
                self.token_secret,
                self.llm_api_key,
                self.search_api_key,
                self.image_api_key,
                self.metrics_token,
            )
            if secret is not None
        ]
        for url in (self.smtp_url, self.database_url):
            password = urlsplit(url).password if "://" in url else None
            if password:
                values.extend({password, unquote(password)})
        return [value for value in values if len(value) >= MIN_REDACTED_LENGTH]

    def secret_key(self) -> str:
        """The link-signing secret. Development generates one once, in the data directory."""
        if self.token_secret is not None:
            secret = self.token_secret.get_secret_value()
            if len(secret.encode()) < MIN_SECRET_BYTES:
                logger.warning(
                    "SIGNOFF_TOKEN_SECRET is shorter than %d bytes; fine for development only",
                    MIN_SECRET_BYTES,
                )
            return secret
        return _development_secret(self.data_dir.resolve())


def _split(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


@functools.cache
def _networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in _split(value))


# Read once per process: links are signed and CSRF tokens checked on every request, and the
# file never changes once written.
@functools.cache
def _development_secret(data_dir: Path) -> str:
    path = data_dir / "token_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: when two processes start at once, one writes and the other reads its secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    logger.warning(
        "No SIGNOFF_TOKEN_SECRET set: generated one in %s (development only; several "
        "processes on different machines must share SIGNOFF_TOKEN_SECRET)",
        path,
    )
    return secret


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise :class:`ConfigError` with a clear message."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except SettingsError as exc:
        # A value the environment source could not parse (a dict or list setting: JSON).
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"SIGNOFF_{field.group(1).upper()}" if field else "a SIGNOFF_ setting"
        raise ConfigError(f"Invalid configuration: {name}: not valid JSON") from None
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["loc"]:
                name = "SIGNOFF_" + "_".join(str(part) for part in error["loc"]).upper()
                message = f"{name}: {message}"
            lines.append(message)
        raise ConfigError("Invalid configuration: " + "; ".join(lines)) from None


def get_settings(request: Request) -> Settings:
    """FastAPI dependency: the application's settings."""
    settings: Settings = request.app.state.settings
    return settings
