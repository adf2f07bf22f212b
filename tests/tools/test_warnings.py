"""What a step's tool could not do becomes a warning on the step (docs/engine.md, Honest step
states): the web tools' outcomes, turned into ``ToolResult.warnings`` with the setting that
would fix them, when one would."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from signoff.config import Settings
from signoff.tools import web
from tests.support.ports import free_port


def context(settings: Settings) -> Any:
    """What the web tools read of their run context: the settings."""
    return SimpleNamespace(deps=SimpleNamespace(settings=settings))


async def test_search_not_configured_names_the_setting(
    make_settings: Callable[..., Settings],
) -> None:
    result = await web.web_search(context(make_settings()), "ai news")
    [warning] = result.warnings
    assert warning.code == "search_not_configured"
    assert warning.setting == "SIGNOFF_SEARCH_PROVIDER"
    assert "No web search provider is configured" in warning.message
    keyless = await web.web_search(context(make_settings(search_provider="brave")), "ai news")
    assert [(w.code, w.setting) for w in keyless.warnings] == [
        ("search_not_configured", "SIGNOFF_SEARCH_API_KEY")
    ]
    unset = await web.web_search(context(make_settings(search_provider="searxng")), "ai news")
    assert [(w.code, w.setting) for w in unset.warnings] == [
        ("search_not_configured", "SIGNOFF_SEARXNG_URL")
    ]


async def test_a_provider_that_fails_is_a_search_failed_warning(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        search_provider="searxng", searxng_url=f"http://127.0.0.1:{free_port()}"
    )
    result = await web.web_search(context(settings), "ai news")
    [warning] = result.warnings
    assert warning.code == "search_failed"
    assert warning.setting is None
    assert "could not be reached" in warning.message


async def test_a_fetch_the_guard_refuses_is_a_fetch_refused_warning(
    make_settings: Callable[..., Settings],
) -> None:
    refused = await web.web_extract(context(make_settings()), "http://127.0.0.1:8080/admin")
    [warning] = refused.warnings
    assert warning.code == "fetch_refused"
    assert "fetch guard refused" in warning.message
    invalid = await web.web_extract(context(make_settings()), "ftp://example.com/file")
    assert [w.code for w in invalid.warnings] == ["fetch_refused"]


async def test_an_empty_query_is_a_warning_too(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(search_provider="brave", search_api_key="k")
    empty = await web.web_search(context(settings), " ")
    assert [w.code for w in empty.warnings] == ["search_failed"]
