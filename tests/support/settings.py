"""Settings for tests: what every test application, process and tool call is configured with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from signoff.config import Settings

# The one signing secret of the tests: an in-process API verifies the links that worker
# processes (tests.support.processes) sign.
TOKEN_SECRET = "test-secret-" + "x" * 40
# Links in emails point here; tests.support.mailbox.links_in turns them back into paths.
BASE_URL = "http://testserver"
# Cheap password hashes keep hundreds of signups fast; production keeps the real cost.
FAST_PASSWORDS: dict[str, Any] = {"password_time_cost": 1, "password_memory_kib": 64}
# One test team drafts and runs more in a minute than a real team in an hour: the budgets stay
# on (their checks run in every test) but far out of the way; tests/budgets sets its own.
ROOMY_BUDGETS: dict[str, Any] = {"team_plans_per_hour": 10_000, "team_runs_per_hour": 10_000}


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    """Settings from these values only (no environment, no .env); the database defaults to a
    SQLite file in ``tmp_path``."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url or f"sqlite+aiosqlite:///{tmp_path}/signoff.db",
        "base_url": BASE_URL,
        "token_secret": TOKEN_SECRET,
        **FAST_PASSWORDS,
        **ROOMY_BUDGETS,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
