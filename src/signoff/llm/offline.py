"""The built-in ``offline`` model: deterministic, no key, no network.

It is what a new user meets before configuring a real model. Its handlers live beside what they
stand in for: planning in :mod:`signoff.planner.offline`, step execution in
:mod:`signoff.tools.offline`.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

OFFLINE_MODEL_NAME = "offline"

Handler = Callable[[list[ModelMessage], AgentInfo], dict[str, Any]]
"""Answers one output tool: the arguments of the call the offline model makes."""


class OfflineModel(FunctionModel):
    """The deterministic built-in model: ``handlers`` answer its output tools by name;
    ``delay_seconds`` makes each call take that long.

    A pydantic-ai ``FunctionModel``, so agents run it exactly like a real model (same
    validation, retries, message history); it answers by calling the output tool it is offered,
    with the arguments that tool's handler computes. It never says it is offline in what it
    writes: its ``model_name`` is ``offline``, and callers report which model drafted or wrote
    something.
    """

    def __init__(self, handlers: Mapping[str, Handler], *, delay_seconds: float = 0.0) -> None:
        super().__init__(self._respond, model_name=OFFLINE_MODEL_NAME)
        self.handlers = dict(handlers)
        self.delay_seconds = delay_seconds

    async def _respond(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if self.delay_seconds > 0:
            # For demos and tests that watch a run progress; sleeps without blocking the loop.
            await asyncio.sleep(self.delay_seconds)
        for tool in info.output_tools:
            handler = self.handlers.get(tool.name)
            if handler is not None:
                args = handler(messages, info)
                return ModelResponse(
                    parts=[ToolCallPart(tool.name, args)],
                    usage=RequestUsage(
                        input_tokens=_estimate_tokens(_prompt_text(messages, info)),
                        output_tokens=_estimate_tokens(json.dumps(args)),
                    ),
                )
        offered = ", ".join(tool.name for tool in info.output_tools) or "plain text"
        raise NotImplementedError(
            f"The offline model cannot answer a request for {offered}; "
            f"it knows the output tools {', '.join(self.handlers)}."
        )


# Usage: a deterministic estimate from text length (about 4 characters per token), so runs on
# the offline model still show token counts that grow with the conversation.
def _estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _prompt_text(messages: list[ModelMessage], info: AgentInfo) -> str:
    pieces = [info.instructions or ""]
    for message in messages:
        for part in message.parts:
            if isinstance(part, UserPromptPart | TextPart) and isinstance(part.content, str):
                pieces.append(part.content)
            elif isinstance(part, ToolReturnPart):
                pieces.append(part.model_response_str())
            elif isinstance(part, ToolCallPart):
                pieces.append(part.args_as_json_str())
    return "\n".join(pieces)


def user_texts(messages: list[ModelMessage]) -> list[str]:
    """The text of every user prompt in the conversation, oldest first."""
    return [
        part.content
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, UserPromptPart) and isinstance(part.content, str)
    ]
