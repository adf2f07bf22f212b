"""Settings: clear errors, production refusals, the development secret."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from signoff.config import ConfigError, _development_secret, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name in ("SIGNOFF_TOKEN_SECRET", "WORKFLOW_TOKEN_SECRET", "SIGNOFF_ENV"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_need_no_configuration(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d")
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path}/d/signoff.db"
    assert settings.llm_model == "offline"
    assert settings.link_mode == "confirm"
    assert settings.queue == "inline"
    assert settings.public_base_url == "http://127.0.0.1:8000"


def test_development_secret_is_generated_once_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(data_dir=tmp_path / "d")
    first = settings.secret_key()
    assert len(first) >= 43
    assert "No SIGNOFF_TOKEN_SECRET set" in caplog.text
    path = tmp_path / "d" / "token_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    _development_secret.cache_clear()  # as a new process would: read back from the file
    assert load_settings(data_dir=tmp_path / "d").secret_key() == first


def test_legacy_secret_name_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKFLOW_TOKEN_SECRET", "s" * 40)
    assert load_settings().secret_key() == "s" * 40


def test_production_refuses_weak_or_missing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_ENV", "production")
    with pytest.raises(ConfigError) as missing:
        load_settings()
    message = str(missing.value)
    assert "SIGNOFF_TOKEN_SECRET" in message
    assert "SIGNOFF_BASE_URL" in message
    assert "SIGNOFF_SMTP_URL" in message
    monkeypatch.setenv("SIGNOFF_TOKEN_SECRET", "too-short")
    monkeypatch.setenv("SIGNOFF_BASE_URL", "https://signoff.example.com")
    monkeypatch.setenv("SIGNOFF_SMTP_URL", "smtp://mail.example.com:587")
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_settings()
    monkeypatch.setenv("SIGNOFF_TOKEN_SECRET", "k" * 32)
    settings = load_settings()
    assert settings.is_production
    assert settings.secure_cookies


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("SIGNOFF_BASE_URL", "ftp://x", "SIGNOFF_BASE_URL"),
        ("SIGNOFF_LINK_MODE", "twice", "SIGNOFF_LINK_MODE"),
        ("SIGNOFF_QUEUE", "kafka", "SIGNOFF_QUEUE"),
        ("SIGNOFF_PORT", "0", "SIGNOFF_PORT"),
        ("SIGNOFF_SMTP_URL", "mail.example.com", "SIGNOFF_SMTP_URL"),
        ("SIGNOFF_LLM_PRICES", "not json", "SIGNOFF_LLM_PRICES: not valid JSON"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=fragment):
        load_settings()


def test_an_empty_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # `SIGNOFF_X=` in a .env file: what README's "empty" defaults and .env.example show.
    for name in (
        "SIGNOFF_LLM_PRICES",
        "SIGNOFF_PORT",
        "SIGNOFF_LLM_MODEL",
        "SIGNOFF_METRICS_TOKEN",
    ):
        monkeypatch.setenv(name, "")
    settings = load_settings()
    assert (settings.llm_prices, settings.port, settings.llm_model) == ({}, 8000, "offline")
    assert settings.metrics_token is None
