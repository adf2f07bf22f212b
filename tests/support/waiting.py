"""Waiting for something that happens elsewhere (a task, a thread, another process) without a
fixed sleep: poll a probe until it holds, with a deadline, and fail with what was awaited.

``probe`` returns the awaited value, or ``None``/``False`` while it has not happened yet; the
waits return that value. ``watch`` names processes (tests.support.processes.Process) whose
death ends the wait at once, with their output, instead of at the deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Watched(Protocol):
    def check_alive(self) -> None: ...


class Deadline:
    """The end of a wait: :meth:`check` fails once it has passed or a watched process died."""

    def __init__(
        self, what: str | Callable[[], str], timeout: float, watch: Iterable[Watched] = ()
    ) -> None:
        self.what = what
        self.timeout = timeout
        self.watch = tuple(watch)
        self.end = time.monotonic() + timeout

    def check(self) -> None:
        for process in self.watch:
            process.check_alive()
        if time.monotonic() > self.end:
            what = self.what() if callable(self.what) else self.what
            raise AssertionError(f"timed out after {self.timeout} s waiting for {what}")


def _done(value: object) -> bool:
    return value is not None and value is not False


async def wait_until(
    probe: Callable[[], Awaitable[T | bool | None] | T | bool | None],
    what: str | Callable[[], str] = "a condition",
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    watch: Iterable[Watched] = (),
) -> T:
    """Poll ``probe`` (a function or a coroutine function) in the event loop until it returns
    something other than None/False; that value. ``what`` (or what it returns) is the failure
    message."""
    deadline = Deadline(what, timeout, watch)
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if _done(value):
            return value  # type: ignore[return-value]
        deadline.check()
        await asyncio.sleep(interval)


def wait_until_sync(
    probe: Callable[[], T | bool | None],
    what: str | Callable[[], str] = "a condition",
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    watch: Iterable[Watched] = (),
) -> T:
    """:func:`wait_until` for code outside an event loop (fixtures, Playwright tests)."""
    deadline = Deadline(what, timeout, watch)
    while True:
        value = probe()
        if _done(value):
            return value  # type: ignore[return-value]
        deadline.check()
        time.sleep(interval)
