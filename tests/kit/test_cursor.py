"""Paging cursors: a round trip, and a 422 for anything else (another list's, garbage, a bad id)."""

from __future__ import annotations

import pytest

from signoff.errors import Unprocessable
from signoff.kit import cursor
from signoff.kit.storable import MAX_DB_INT


def test_a_cursor_gives_back_its_parts() -> None:
    token = cursor.encode("runs", 1700000000000000, 42)
    assert "|" not in token
    assert "=" not in token
    assert cursor.decode("runs", token, 2) == ["1700000000000000", "42"]


@pytest.mark.parametrize(
    "token",
    [
        cursor.encode("audit", 42),  # another list's cursor
        cursor.encode("runs", 42),  # too few parts
        cursor.encode("runs", 1, 2, 3),  # too many
        "not a cursor!",
        "%%%",
        "",
        "//79",  # decodes to bytes that are not UTF-8
    ],
)
def test_anything_else_is_a_422_naming_the_cursor(token: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        cursor.decode("runs", token, 2)
    assert refused.value.details == [{"field": "cursor", "message": "invalid cursor"}]


@pytest.mark.parametrize("part", ["0", "-1", "01", "1.5", "x", str(MAX_DB_INT + 1), "9" * 11])
def test_a_row_id_is_a_stored_integer(part: str) -> None:
    with pytest.raises(Unprocessable):
        cursor.row_id(part)


def test_row_ids_in_range_pass() -> None:
    assert cursor.row_id("1") == 1
    assert cursor.row_id(str(MAX_DB_INT)) == MAX_DB_INT
