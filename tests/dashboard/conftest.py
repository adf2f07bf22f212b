from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.support.pages import Browser, browser_factory


@pytest.fixture
def browser(app: FastAPI) -> Browser:
    """Opens a browser of its own (its own cookies) on the app: ``async with browser() as b``."""
    return browser_factory(app)
