""".env.example documents every setting of signoff/config.py, at its true default, each with a
comment: a setting added without its line here fails this test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from signoff.config import Settings

ENV_EXAMPLE = Path(__file__).parents[2] / ".env.example"
SETTING_LINE = re.compile(r"^# (SIGNOFF_[A-Z0-9_]+)=(.*)$")


def _documented() -> list[tuple[str, str, str]]:
    """(variable, value shown, the comment line above it) for each setting line."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    found = []
    for number, line in enumerate(lines):
        match = SETTING_LINE.match(line)
        if match:
            above = lines[number - 1] if number else ""
            found.append((match[1], match[2], above))
    return found


def test_every_setting_is_documented_once() -> None:
    names = [name for name, _, _ in _documented()]
    expected = {f"SIGNOFF_{field.upper()}" for field in Settings.model_fields}
    assert sorted(expected - set(names)) == [], "missing from .env.example"
    assert sorted(set(names) - expected) == [], "not settings of signoff/config.py"
    assert len(names) == len(set(names)), "documented twice"


def test_each_setting_has_a_comment_and_its_true_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, shown, above in _documented():
        commented = above.startswith("# ") and not SETTING_LINE.match(above)
        assert commented, f"{name} needs a one-line comment above it"
        field = name.removeprefix("SIGNOFF_").lower()
        default = Settings.model_fields[field].get_default(call_default_factory=True)
        if shown == "":
            assert default in (None, ""), f"{name}: the default is {default!r}, not empty"
        else:
            # Read as the environment would give it (JSON for a mapping, say).
            with monkeypatch.context() as env:
                env.setenv(name, shown)
                parsed = Settings(_env_file=None)  # type: ignore[call-arg]
            assert getattr(parsed, field) == default, f"{name}: the default is {default!r}"
