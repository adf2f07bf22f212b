"""The memory key rule (memory/keys.py): the API's pattern for every writer, and no key but
``core`` that reads as ``core``."""

from __future__ import annotations

import re
import string

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signoff.errors import Unprocessable
from signoff.memory.keys import KEY_PATTERN, check_key, clean_key, key_skeleton, looks_like_core
from tests.support.accounts import signup

pytestmark = pytest.mark.postgres

CORE_SPELLINGS = [
    "core",
    "Core",
    "CORE",
    " core ",
    "c o r e",
    "C.O.R.E",
    "co-re",
    "c\u200bore",  # zero-width space
    "co\u2060re",  # word joiner
    "\u202ecore",  # right-to-left override
    "core\U000e0020",  # a tag character
    "\uff43\uff4f\uff52\uff45",  # fullwidth
    "\uff23\uff2f\uff32\uff25",  # fullwidth capitals
    "\u0441\u043e\u0433\u0435",  # Cyrillic с о г е
    "\u0441\u043ere",  # Cyrillic с о, Latin r e
    "\u0421\u041e\u0420\u0415",  # Cyrillic capitals С О Р Е (reads as COPE): not core
    "c\u03bfre",  # Greek omicron
    "\U0001d41c\U0001d428\U0001d42b\U0001d41e",  # mathematical bold
    "c0re",
    "\u1d04\u1d0f\u0280\u1d07",  # small capitals
]
NOT_CORE = ["cores", "core2", "score", "corenotes", "core-notes", "brand", "c", "cor", "ore"]


@pytest.mark.parametrize("key", CORE_SPELLINGS)
def test_spellings_of_core_read_as_core(key: str) -> None:
    expected = key != "\u0421\u041e\u0420\u0415"  # COPE in Cyrillic is another word
    assert looks_like_core(key) is expected, key_skeleton(key)


@pytest.mark.parametrize("key", NOT_CORE)
def test_other_words_do_not(key: str) -> None:
    assert not looks_like_core(key)
    assert check_key(key) == key


def test_only_core_itself_passes_the_rule() -> None:
    assert check_key("core") == "core"
    for key in ("Core", "CORE", "C.O.R.E", "c0re", "co-re", "co_re", "c:o:r:e"):
        with pytest.raises(Unprocessable) as refused:
            check_key(key)
        assert refused.value.error_code == "memory_key_reserved", key


@pytest.mark.parametrize(
    "key",
    ["", "-note", "bad key", "note!", "n" * 101, "note\n", "ноте", "\uff4e\uff4f\uff54\uff45"],
)
def test_keys_outside_the_pattern_are_refused(key: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        check_key(key)
    assert refused.value.error_code == "memory_key_invalid"


def test_cleaning_makes_plain_ascii_of_what_reads_as_ascii() -> None:
    assert clean_key("  \uff4e\uff4f\uff54\uff45\u200b-1\n") == "note-1"
    assert clean_key("brand\u00advoice") == "brandvoice"


@given(st.text(max_size=120))
def test_any_key_that_passes_is_one_the_api_path_accepts(raw: str) -> None:
    key = clean_key(raw)
    try:
        stored = check_key(key)
    except Unprocessable:
        return
    assert re.fullmatch(KEY_PATTERN, stored)
    assert stored == "core" or not looks_like_core(stored)


@given(st.text(alphabet=string.ascii_letters + string.digits + "_.:-", min_size=1, max_size=100))
def test_keys_of_the_pattern_pass_unless_they_read_as_core(key: str) -> None:
    if not key[0].isalnum():
        return
    if looks_like_core(key) and key != "core":
        with pytest.raises(Unprocessable):
            check_key(key)
    else:
        assert check_key(key) == key


async def test_the_api_refuses_keys_that_read_as_core(client: httpx.AsyncClient) -> None:
    owner = await signup(client)
    for key in ("Core", "CORE", "C.O.R.E", "c0re", "co-re"):
        response = await client.put(
            f"/api/memory/{key}", json={"value": "x"}, headers=owner.headers
        )
        assert response.status_code == 422, key
        assert response.json()["code"] == "memory_key_reserved"
    for key in ("core", "core-notes", "score"):
        response = await client.put(
            f"/api/memory/{key}", json={"value": "x"}, headers=owner.headers
        )
        assert response.status_code == 200, (key, response.text)
    listed = await client.get("/api/memory", headers=owner.headers)
    assert sorted(entry["key"] for entry in listed.json()) == ["core", "core-notes", "score"]
