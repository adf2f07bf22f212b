"""The base of every API schema: camelCase on the wire, snake_case in Python.

Also the one error body (:class:`ErrorResponse`) and the rule that keeps unstorable text out:
every string a request body carries, however deeply nested, is checked by :class:`ApiInput`
(query, path, header and form values by ``kit/storable.py``'s dependency).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from signoff.errors import ErrorCode
from signoff.kit.storable import unstorable_problem


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        from_attributes=True,
        # Responses always carry every field (null when empty), so the OpenAPI document's
        # response schemas mark them all as required, defaults included.
        json_schema_serialization_defaults_required=True,
    )


class ApiInput(ApiModel):
    """A request body: unknown fields are refused, so a typo is an error, not a silent no-op.

    No string in it (a field, a list item, a key or value of a free-form object) may hold a
    NUL character or a lone surrogate: no database column stores them, so they are a 422 that
    names the field, never a 500 from the database.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        problem = unstorable_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class EmailSentResponse(ApiModel):
    """What an endpoint that (re)sends an email answers: who got it, in a sentence and a list."""

    message: str
    emailed_to: list[str]


class ErrorDetail(ApiModel):
    """One problem with one field of the request."""

    field: str = Field(description="The field, camelCase; nested ones dotted (`steps.0.toolName`).")
    message: str


class ErrorResponse(ApiModel):
    """The body of every error answer, whatever its status."""

    # `details` is sent only when there are some: not a required field.
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    error: str = Field(description="What went wrong, a sentence for a person (it may change).")
    code: ErrorCode = Field(description="What went wrong, for programs to branch on.")
    details: list[ErrorDetail] = Field(
        default_factory=list,
        description="Validation problems, one per field (422 only; absent otherwise).",
    )
