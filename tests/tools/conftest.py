"""Fixtures for the tools' tests (the local web, the listener and the connection log they share
with tests/kit are in tests/conftest.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from signoff.config import Settings
from tests.support import settings as test_settings


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a tool call, from keyword overrides only (no environment, no .env)."""
    return functools.partial(test_settings.make_settings, tmp_path)
