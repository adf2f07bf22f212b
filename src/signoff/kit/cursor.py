"""Opaque paging cursors: where a page ended, as one URL-safe token a client passes back.

A cursor is the base64 of a list's name and the position's parts, joined by ``|``: one list's
cursor is never taken for another's, and the position's shape may change without changing the
API. A cursor that does not decode to what its list expects is a 422 naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import re

from signoff.errors import Unprocessable
from signoff.kit.storable import MAX_DB_INT

_ID = re.compile(r"[1-9][0-9]{0,9}")


def encode(kind: str, *parts: object) -> str:
    raw = "|".join([kind, *(str(part) for part in parts)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(kind: str, cursor: str, count: int) -> list[str]:
    """The ``count`` parts of a cursor :func:`encode` gave out for ``kind`` (422 otherwise).
    The caller parses them, raising :func:`invalid` for a part it cannot use."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid() from None
    name, *parts = raw.split("|")
    if name != kind or len(parts) != count:
        raise invalid()
    return parts


def invalid() -> Unprocessable:
    return Unprocessable(
        "The cursor is not one this API gave out.",
        details=[{"field": "cursor", "message": "invalid cursor"}],
    )


def row_id(part: str) -> int:
    """A cursor part that is a row id (1 to the largest stored integer), or a 422."""
    if not _ID.fullmatch(part) or int(part) > MAX_DB_INT:
        raise invalid()
    return int(part)
