"""``signoff doctor`` against real servers on 127.0.0.1: a database, an SMTP server with AUTH
(aiosmtpd), an OpenAI-compatible model (tests/support/openai_fake.py) and a SearXNG stand-in
(tests/support/fakeweb.py). One line per check; exit 1 when one failed; no secret printed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pydantic_ai.models import override_allow_model_requests
from typer.testing import CliRunner, Result

from signoff.cli import app as cli
from signoff.migrations.runner import upgrade
from tests.support.fakeweb import FakeWeb, Reply
from tests.support.openai_fake import FakeOpenAI, http_error, text
from tests.support.postgres import fresh_postgres_database
from tests.support.smtp import FakeSmtpServer, serving_smtp

SECRET = "doctor-token-secret-" + "z" * 30
SEARXNG_RESULTS = {"results": [{"url": "https://a.example/", "title": "A", "content": "a"}]}


def _doctor(**settings: object) -> tuple[Result, dict[str, str]]:
    """Run ``signoff doctor`` with these settings only; its exit and {check: line}."""
    env = {f"SIGNOFF_{name.upper()}": str(value) for name, value in settings.items()}
    with override_allow_model_requests(True):  # the tests' model servers are local fakes
        result = CliRunner().invoke(cli, ["doctor"], env=env)
    lines = {line.split()[1]: line for line in result.output.splitlines() if line.strip()}
    return result, lines


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_nothing_configured_passes_and_says_what_is_missing(tmp_path: Path) -> None:
    result, lines = _doctor(data_dir=tmp_path)
    assert result.exit_code == 0, result.output
    assert lines["database"].startswith("ok ")
    assert "does not exist yet" in lines["database"]
    assert lines["queue"].startswith("ok ")
    assert lines["model"].startswith("ok ")
    assert "offline" in lines["model"]
    for check, setting in [("email", "SIGNOFF_BASE_URL"), ("smtp", "SIGNOFF_SMTP_URL")]:
        assert lines[check].startswith("missing ")
        assert setting in lines[check]
    assert "SIGNOFF_SEARCH_PROVIDER" in lines["search"]
    assert len(lines) == 6


def test_a_working_configuration_is_all_ok(
    tmp_path: Path, fake_openai: FakeOpenAI, web: FakeWeb
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/signoff.db"
    upgrade(url)
    fake_openai.script(text("ok"))
    web.route("/search", Reply(json=SEARXNG_RESULTS))
    with serving_smtp(FakeSmtpServer(login=("mailer", "smtp-password"))) as smtp:
        result, lines = _doctor(
            data_dir=tmp_path,
            database_url=url,
            base_url="https://signoff.example",
            token_secret=SECRET,
            smtp_url=smtp.url,
            llm_model="fake-model",
            llm_base_url=fake_openai.base_url,
            llm_api_key="sk-model-key",
            search_provider="searxng",
            searxng_url=web.url("/"),
        )
    assert result.exit_code == 0, result.output
    assert all(line.startswith("ok ") for line in lines.values()), result.output
    assert "schema up to date" in lines["database"]
    assert "login accepted" in lines["smtp"]
    assert smtp.logins == [("mailer", True)]
    assert len(fake_openai.requests) == 1
    assert fake_openai.authorizations == ["Bearer sk-model-key"]
    assert [request.path for request in web.requests] == ["/search"]
    for secret in (SECRET, "smtp-password", "sk-model-key"):
        assert secret not in result.output


def test_each_failure_names_its_setting_and_no_secret_is_shown(
    tmp_path: Path, fake_openai: FakeOpenAI, web: FakeWeb
) -> None:
    api_key = "sk-doctor-model-key-123"
    fake_openai.script(http_error(401, f"Incorrect API key provided: {api_key}"))
    web.route("/search", Reply(status=500))
    with serving_smtp(FakeSmtpServer(login=("mailer", "the-right-one"))) as smtp:
        wrong = smtp.url.replace("the-right-one", "a-wrong-password")
        result, lines = _doctor(
            data_dir=tmp_path,
            database_url=f"postgresql://signoff:db-password-9@127.0.0.1:{_dead_port()}/signoff",
            queue="procrastinate",
            smtp_url=wrong,
            llm_model="fake-model",
            llm_base_url=fake_openai.base_url,
            llm_api_key=api_key,
            search_provider="searxng",
            searxng_url=web.url("/"),
        )
    assert result.exit_code == 1, result.output
    expected = {
        "database": "SIGNOFF_DATABASE_URL",
        "queue": "SIGNOFF_TOKEN_SECRET",
        "smtp": "SIGNOFF_SMTP_URL",
        "model": "SIGNOFF_LLM_API_KEY",
        "search": "SIGNOFF_SEARCH_PROVIDER=searxng",
    }
    for check, setting in expected.items():
        assert lines[check].startswith("failed "), lines[check]
        assert setting in lines[check], lines[check]
    assert "refused the login" in lines["smtp"]
    assert smtp.logins
    assert set(smtp.logins) == {("mailer", False)}
    assert "401" in lines["model"]
    for secret in ("db-password-9", "a-wrong-password", api_key):
        assert secret not in result.output


def test_unreachable_servers_fail_quickly(tmp_path: Path) -> None:
    dead = _dead_port()
    result, lines = _doctor(
        data_dir=tmp_path,
        smtp_url=f"smtp://127.0.0.1:{dead}",
        llm_model="fake-model",
        llm_base_url=f"http://127.0.0.1:{dead}/v1",
        search_provider="searxng",
        searxng_url=f"http://127.0.0.1:{dead}",
    )
    assert result.exit_code == 1, result.output
    assert lines["smtp"].startswith("failed ")
    assert f"127.0.0.1:{dead}" in lines["smtp"]
    assert lines["model"].startswith("failed ")
    assert "SIGNOFF_LLM_BASE_URL" in lines["model"]
    assert lines["search"].startswith("failed ")
    assert "could not be reached" in lines["search"]


def test_a_sqlite_schema_behind_is_left_to_serve(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    upgrade(url, "0006")
    result, lines = _doctor(data_dir=tmp_path, database_url=url)
    assert result.exit_code == 0, result.output
    assert "0006" in lines["database"]
    assert "signoff db upgrade" in lines["database"]
    assert "signoff serve" in lines["database"]


def test_an_invalid_setting_is_one_line(tmp_path: Path) -> None:
    result, _ = _doctor(data_dir=tmp_path, port="eighty")
    assert result.exit_code == 2
    assert "SIGNOFF_PORT" in result.output
    assert "Traceback" not in result.output


@pytest.mark.postgres(only=True)
def test_postgresql_at_head_with_the_job_queue_is_ok_and_behind_is_not(tmp_path: Path) -> None:
    with fresh_postgres_database("doctor", migrated=False) as url:
        upgrade(url, "0006")
        settings = {"data_dir": tmp_path, "database_url": url, "queue": "procrastinate"}
        result, lines = _doctor(**settings, token_secret=SECRET)
        assert result.exit_code == 1
        assert lines["database"].startswith("failed ")
        assert "signoff db upgrade" in lines["database"]
        upgrade(url)
        result, lines = _doctor(**settings, token_secret=SECRET)
        assert result.exit_code == 0, result.output
        assert lines["database"].startswith("ok ")
        assert lines["queue"].startswith("ok ")
