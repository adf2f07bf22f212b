"""The ``memory`` tool: view and search the team's memory, save notes under any key but core.

``core`` (the brand voice every plan and step sees) is edited by admins only, so nothing a run
reads — a web page, say — can change what later plans and steps are told.
"""

from __future__ import annotations

from typing import Literal

from pydantic_ai import RunContext

from signoff.audit.service import Actor
from signoff.memory import repository, service
from signoff.models.memory import CORE_KEY
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
        key = (key or "").strip()
        if not key or not value or not value.strip():
            return ToolResult(text="To save a note, give both a key and a value.")
        if key.lower() == CORE_KEY:
            return ToolResult(
                text="The core memory can only be changed by a team admin in Signoff; "
                "nothing was saved."
            )
        async with deps.db.write() as session:
            # Audited as the run's own change: no person decided it.
            await service.put(
                session, deps.team_id, key[:100], value.strip()[:MAX_NOTE], Actor.run(deps.run_id)
            )
        return ToolResult(text=f"Saved the note '{key[:100]}'.", data={"key": key[:100]})
    async with deps.db.read() as session:
        entries = await repository.list_for_team(session, deps.team_id)
    if action == "view" and key:
        found = next((entry for entry in entries if entry.key == key.strip()), None)
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
