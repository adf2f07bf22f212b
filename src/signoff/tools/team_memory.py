"""The ``memory`` tool: view and search the team's memory, save notes under any key but core.

``core`` (the brand voice every plan and step sees) is edited by admins only, so nothing a run
reads — a web page, say — can change what later plans and steps are told; nor can it save a
note whose key merely reads as ``core``. Keys obey the API's rules (``memory/keys.py``), so
every note saved here can be read and deleted through ``/api/memory/{key}``.
"""

from __future__ import annotations

from typing import Literal

from pydantic_ai import RunContext

from signoff.audit.service import Actor
from signoff.errors import AppError
from signoff.memory import repository, service
from signoff.memory.keys import clean_key, looks_like_core
from signoff.tools.base import ToolContext, ToolResult

MAX_NOTE = 4000


async def memory(
    ctx: RunContext[ToolContext],
    action: Literal["view", "search", "save", "create", "update"],
    key: str | None = None,
    value: str | None = None,
    query: str | None = None,
) -> ToolResult:
    """Use the team's memory: `view` a key (or list all keys), `search` notes for words, or
    `save` a note under a key (never `core`)."""
    deps = ctx.deps
    if action in ("save", "create", "update"):
        key = clean_key(key or "")
        if not key or not value or not value.strip():
            return ToolResult(text="To save a note, give both a key and a value.")
        if looks_like_core(key):
            return ToolResult(
                text="The core memory can only be changed by a team admin in Signoff, and no "
                "note may be named like it; nothing was saved."
            )
        try:
            async with deps.db.write() as session:
                await service.put(
                    session,
                    deps.team_id,
                    key,
                    value.strip()[:MAX_NOTE],
                    # Audited as the run's own change: no person decided it.
                    Actor.run(deps.run_id),
                )
        except AppError as error:
            return ToolResult(text=f"{error.message} Nothing was saved.")
        return ToolResult(text=f"Saved the note '{key}'.", data={"key": key})
    async with deps.db.read() as session:
        entries = await repository.list_for_team(session, deps.team_id)
    if action == "view" and key:
        found = next((entry for entry in entries if entry.key == clean_key(key)), None)
        if found is None:
            return ToolResult(text=f"There is no note '{key}'.")
        return ToolResult(text=f"{found.key}:\n{found.value}")
    if action == "search" and query:
        words = [word.lower() for word in query.split() if word]
        hits = [e for e in entries if any(w in (e.key + " " + e.value).lower() for w in words)]
        if not hits:
            return ToolResult(text=f"No note mentions {query!r}.")
        return ToolResult(text="\n\n".join(f"{e.key}:\n{e.value}" for e in hits))
    if not entries:
        return ToolResult(text="The team's memory is empty.")
    return ToolResult(text="Notes in memory: " + ", ".join(entry.key for entry in entries))
