"""Observation hooks that ``bench/engine.py`` puts into the ``signoff`` processes it starts.

Python imports ``sitecustomize`` at start-up from any directory on ``PYTHONPATH``, so the bench
starts the real ``signoff serve`` / ``signoff worker`` commands unchanged and only adds this
directory to their ``PYTHONPATH`` with ``SIGNOFF_BENCH_PROBE_DIR`` set. Nothing runs until the
bench sends a signal:

- ``SIGUSR1``: append a snapshot to ``probe-<pid>.jsonl`` — the number of asyncio tasks (by
  coroutine name), threads and gc-tracked objects. The handler runs on the event-loop thread, so
  ``asyncio.all_tasks()`` sees the loop (no endpoint exposes this).
- ``SIGUSR2``: start, then (second signal) stop a statistical profiler on CPU time
  (``ITIMER_PROF``): each sample counts the event-loop thread's current stack in one bucket
  (agent run, HTTP API, database, engine, ...), and the counts are appended to the same file.

Without ``SIGNOFF_BENCH_PROBE_DIR`` this module does nothing.
"""

from __future__ import annotations

import os

_DIR = os.environ.get("SIGNOFF_BENCH_PROBE_DIR")


def _install(directory: str) -> None:
    import asyncio
    import collections
    import gc
    import json
    import signal
    import threading
    import time
    from typing import Any

    try:
        import greenlet
    except ImportError:  # SQLAlchemy's asyncio extra brings it; without, nothing to follow
        greenlet = None

    path = os.path.join(directory, f"probe-{os.getpid()}.jsonl")

    def write(record: dict[str, object]) -> None:
        record["pid"] = os.getpid()
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def snapshot(_signum: int, _frame: object) -> None:
        names: collections.Counter[str] = collections.Counter()
        try:
            tasks = asyncio.all_tasks(asyncio.get_running_loop())
        except RuntimeError:
            count = None
        else:
            count = len(tasks)
            for task in tasks:
                coro = task.get_coro()
                names[getattr(coro, "__qualname__", type(coro).__name__)] += 1
        write(
            {
                "kind": "snapshot",
                "asyncio_tasks": count,
                "task_kinds": dict(names.most_common()),
                "threads": threading.active_count(),
                "gc_objects": len(gc.get_objects()),
            }
        )

    def spawned_by_library() -> bool:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop
            return False
        return task is not None and task.get_name().startswith(("pydantic_graph.", "pydantic_ai."))

    # Buckets, first match wins, looked for in the stack of the task being run: the frames
    # above asyncio's Handle._run (below it, every stack has uvicorn.run or the CLI command).
    def classify(frame: Any) -> tuple[str, str]:
        files: list[str] = []
        names: list[str] = []
        in_task = False
        # SQLAlchemy's asyncio layer runs its synchronous core in a greenlet, whose stack ends
        # at the greenlet's start; the caller's stack goes on in the parent greenlet, suspended
        # where it switched (``greenlet_spawn``). Following it files an ORM statement under
        # whoever ran it: the HTTP API, the mail sender, the engine.
        current = greenlet.getcurrent() if greenlet else None
        while frame is not None:
            code = frame.f_code
            if code.co_name == "_run" and code.co_filename.endswith("asyncio/events.py"):
                in_task = True
                break
            files.append(code.co_filename)
            names.append(code.co_name)
            frame = frame.f_back
            if frame is None and current is not None and current.parent is not None:
                current = current.parent
                frame = current.gr_frame
        if not files or (files[0].endswith("selectors.py") and names[0] == "select"):
            return "idle loop (another thread's CPU)", ""
        here = f"{_short(files[0])}:{names[0]}"
        if not in_task:
            return "event loop / other", here
        # The innermost frame of our own code says where in Signoff the time went.
        ours = next(
            (f"{_short(f)}:{n}" for f, n in zip(files, names, strict=True) if "/signoff/" in f),
            here,
        )

        def has(*parts: str) -> bool:
            return any(part in f for f in files for part in parts)

        # pydantic-graph is pydantic-ai's (the agent's graph; the same release). The graph runs
        # its steps in anyio tasks, whose frames above Handle._run may be anyio's alone; anyio
        # names such a task after the function it was spawned with.
        library = ("/pydantic_ai/", "/pydantic_graph/", "/signoff/llm/", "/signoff/tools/")
        if "_call_model" in names or has(*library) or spawned_by_library():
            return "agent run", here
        if has("/uvicorn/", "/starlette/", "/fastapi/", "/h11/"):
            return "HTTP API", ours
        if has("/signoff/mail/sender.py"):
            return "mail sender", ours
        if has("/sqlalchemy/", "/aiosqlite/"):
            return "database (SQLAlchemy)", here
        if has("/signoff/"):
            return "engine", ours
        if has("/procrastinate/", "/psycopg/", "/psycopg_pool/"):
            return "queue (procrastinate)", here
        return "event loop / other", here

    # A statistical profiler on CPU time: the kernel sends SIGPROF every ``interval`` seconds
    # of the process's CPU time and Python runs the handler on the main thread, so samples
    # are proportional to CPU used (a sampling *thread* would be biased towards the moments the
    # main thread releases the GIL, i.e. system calls).
    buckets: collections.Counter[str] = collections.Counter()
    where: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    sampling: dict[str, float] = {}

    def on_sample(_signum: int, frame: Any) -> None:
        bucket, place = classify(frame)
        buckets[bucket] += 1
        if place:
            where[bucket][place] += 1

    def toggle_sampler(_signum: int, _frame: object) -> None:
        if not sampling:
            buckets.clear()
            where.clear()
            sampling["started"] = time.monotonic()
            sampling["cpu"] = time.process_time()
            sampling["main"] = time.thread_time()  # handlers run on the main thread
            sampling["direct"] = direct_threads_cpu()
            collected.clear()
            interval = float(os.environ.get("SIGNOFF_BENCH_SAMPLE_SECONDS", "0.002"))
            signal.signal(signal.SIGPROF, on_sample)
            signal.setitimer(signal.ITIMER_PROF, interval, interval)
            return
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
        write(
            {
                "kind": "profile",
                "buckets": dict(buckets),
                "top": {b: dict(c.most_common(8)) for b, c in where.items()},
                "seconds": time.monotonic() - sampling["started"],
                "cpu": time.process_time() - sampling["cpu"],
                "main_cpu": time.thread_time() - sampling["main"],
                "direct_cpu": direct_threads_cpu() - sampling["direct"],
                "gc_cpu": {str(gen): cpu for gen, cpu in sorted(collected.items())},
            }
        )
        sampling.clear()

    def direct_threads_cpu() -> float:
        """CPU seconds of ``Database.write_direct``'s threads; they live as long as the process,
        so the difference over a window is theirs. The rest of the non-main threads' CPU is
        SQLAlchemy's asyncio drivers (aiosqlite's thread per connection)."""
        return sum(
            time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
            for thread in threading.enumerate()
            if thread.name.startswith("signoff-db") and thread.ident is not None
        )

    # The cyclic garbage collector's CPU, by generation, while sampling: a collection runs on
    # whichever thread allocated, between its "start" and "stop" callbacks.
    collected: collections.Counter[int] = collections.Counter()
    gc_started: dict[int, float] = {}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if not sampling:
            return
        thread = threading.get_ident()
        if phase == "start":
            gc_started[thread] = time.thread_time()
        elif thread in gc_started:
            collected[info["generation"]] += time.thread_time() - gc_started.pop(thread)

    gc.callbacks.append(on_gc)
    signal.signal(signal.SIGUSR1, snapshot)
    signal.signal(signal.SIGUSR2, toggle_sampler)


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/src/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return "/".join(filename.rsplit("/", 2)[-2:])


if _DIR:
    _install(_DIR)
