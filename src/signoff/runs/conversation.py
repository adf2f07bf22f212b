"""The run's conversation: pydantic-ai messages stored one per row, reloaded exactly.

Each row holds one ``ModelMessage`` serialised by the library's own type adapter, so a step
sees every earlier step's messages exactly as they were produced: :func:`dump` and
:func:`parse` are that format, whoever writes the rows (this module in an ORM session, or the
executor's fast path through :mod:`signoff.runs.step_store`, whose statements both use).
:func:`public_messages` turns the rows into the stable API shape (role, kind, text / tool call
/ tool result).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic_ai import ModelMessagesTypeAdapter
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from sqlalchemy import ScalarResult, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from signoff.kit.clock import utc_now
from signoff.models import ConversationMessage
from signoff.runs.prompts import step_heading
from signoff.runs.schemas import MessageOut
from signoff.runs.step_store import INSERT_MESSAGES, LOAD_MESSAGES, message_params

APPROVED_MESSAGE = "Approved. Please continue."


def edited_message(text: str) -> str:
    """What the agent reads when the approver edited the output before approving: the
    approved version is theirs, and later steps must use it, not the tool's."""
    return (
        "Approved with edits: the person approving edited the output before approving it. "
        "This exact text is the approved version; use it, not the earlier tool result, from "
        f"now on:\n\n{text}\n\n{APPROVED_MESSAGE}"
    )


def rejected_message(note: str | None) -> str:
    feedback = (note or "").strip() or "No feedback was given"
    return f"Rejected. Feedback: {feedback}. Please revise."


async def load(session: AsyncSession, conversation_id: str) -> list[ModelMessage]:
    """Every message, in order. Positions run 0, 1, 2, … (see :func:`append`), so the length of
    the list is the position the next message takes."""
    rows: ScalarResult[str] = await session.scalars(
        LOAD_MESSAGES, {"b_conversation": conversation_id}
    )
    # One validation of the whole array: each row holds one element of the library's own
    # list format, and validating them one by one costs several times as much.
    return parse(list(rows))


def parse(rows: list[str]) -> list[ModelMessage]:
    """Stored rows (as :func:`append` wrote them) back into messages: what a reload gives."""
    return ModelMessagesTypeAdapter.validate_json(f"[{','.join(rows)}]")


async def load_rows(session: AsyncSession, conversation_id: str) -> list[ConversationMessage]:
    rows = await session.scalars(
        select(ConversationMessage)
        .where(ConversationMessage.conversation_id == conversation_id)
        .order_by(ConversationMessage.position)
    )
    return list(rows)


async def append(
    session: AsyncSession,
    conversation_id: str,
    messages: list[ModelMessage],
    *,
    position: int | None = None,
) -> list[str]:
    """Add ``messages`` at the end, in one statement, and return the rows as stored.
    ``position`` is where the first goes when the caller knows it (the engine loaded the
    conversation under its lease); a wrong one fails on the unique (conversation, position)
    index instead of reordering anything."""
    if not messages:
        return []
    if position is None:
        last = await session.scalar(
            select(func.max(ConversationMessage.position)).where(
                ConversationMessage.conversation_id == conversation_id
            )
        )
        position = 0 if last is None else last + 1
    rows = dump(messages)
    await session.execute(INSERT_MESSAGES, message_params(conversation_id, position, rows))
    return rows


def dump(messages: list[ModelMessage]) -> list[str]:
    """The rows that store ``messages``: each one element of the library's own list format
    (see :func:`parse`)."""
    return [ModelMessagesTypeAdapter.dump_json([message]).decode()[1:-1] for message in messages]


async def append_user_text(session: AsyncSession, conversation_id: str, text: str) -> None:
    """Add a person's words (an approval or a rejection) to the conversation."""
    await append(
        session,
        conversation_id,
        [ModelRequest(parts=[UserPromptPart(content=text, timestamp=utc_now())])],
    )


async def step_start(
    session: AsyncSession, conversation_id: str, step_index: int, step_count: int
) -> int:
    """The position where step ``step_index`` begins: its first attempt's message (the one
    :func:`signoff.runs.prompts.step_text` wrote). A step that never stored a message (it
    failed, or its run stopped while it ran) begins at the end. Step 0 begins at 0 (its
    message also carries the run's opening)."""
    if step_index == 0:
        return 0
    heading = step_heading(step_index, step_count)
    rows = await load_rows(session, conversation_id)
    for row in rows:
        message = ModelMessagesTypeAdapter.validate_json(f"[{row.data}]")[0]
        if isinstance(message, ModelRequest) and any(
            isinstance(part, UserPromptPart)
            and isinstance(part.content, str)
            and part.content.startswith(heading)
            for part in message.parts
        ):
            return row.position
    return len(rows)


async def copy(session: AsyncSession, source_id: str, target_id: str, *, before: int) -> None:
    """Copy the source conversation's messages at positions below ``before`` into the (empty)
    target conversation, byte for byte and at the same positions, in one statement."""
    columns = ConversationMessage.__table__.c
    await session.execute(
        insert(ConversationMessage).from_select(
            ["conversation_id", "position", "data", "created_at"],
            select(
                literal(target_id, type_=columns.conversation_id.type),
                columns.position,
                columns.data,
                columns.created_at,
            ).where(columns.conversation_id == source_id, columns.position < before),
        )
    )


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def public_messages(rows: list[ConversationMessage]) -> list[MessageOut]:
    """The stable API shape of a conversation, whatever the storage format."""
    out: list[MessageOut] = []
    for row in rows:
        message = ModelMessagesTypeAdapter.validate_json(f"[{row.data}]")[0]
        created: datetime = row.created_at
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart):
                    text = part.content if isinstance(part.content, str) else str(part.content)
                    out.append(MessageOut(role="user", kind="text", text=text, created_at=created))
                elif isinstance(part, SystemPromptPart):
                    out.append(
                        MessageOut(
                            role="system", kind="text", text=part.content, created_at=created
                        )
                    )
                elif isinstance(part, ToolReturnPart):
                    out.append(
                        MessageOut(
                            role="tool",
                            kind="tool_result",
                            tool_name=part.tool_name,
                            result=_jsonable(part.content),
                            created_at=created,
                        )
                    )
        elif isinstance(message, ModelResponse):
            for response_part in message.parts:
                if isinstance(response_part, TextPart):
                    out.append(
                        MessageOut(
                            role="assistant",
                            kind="text",
                            text=response_part.content,
                            created_at=created,
                        )
                    )
                elif isinstance(response_part, ToolCallPart):
                    out.append(
                        MessageOut(
                            role="assistant",
                            kind="tool_call",
                            tool_name=response_part.tool_name,
                            args=response_part.args_as_dict(),
                            created_at=created,
                        )
                    )
    return out
