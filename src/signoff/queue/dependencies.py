"""FastAPI dependency: the process's job queue (enqueue only after the commit)."""

from __future__ import annotations

from fastapi import Request

from signoff.queue.jobs import JobQueue


def get_queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.queue
    return queue
