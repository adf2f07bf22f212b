"""Bodies of the memory endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, RootModel

from signoff.kit.schemas import ApiInput, ApiModel

MAX_VALUE_LENGTH = 20_000


class MemoryWrite(ApiInput):
    value: str = Field(min_length=1, max_length=MAX_VALUE_LENGTH)


class MemoryEntryOut(ApiModel):
    key: str
    value: str
    updated_at: datetime
    updated_by: str | None


class MemoryList(RootModel[list[MemoryEntryOut]]):
    """Every entry of the team's memory."""
