"""Memory keys: the one rule for every writer (the API and the ``memory`` tool).

A key matches :data:`KEY_PATTERN` (ASCII letters, digits and ``_.:-``, at most 100
characters), so anything saved can be read and deleted through ``/api/memory/{key}``. And no
key but ``core`` itself may *look* like ``core``: the core entry (the team's voice, written
by admins only) is what every plan and step is told, and a note called ``Core``, ``c o r e``
or ``соrе`` (Cyrillic) beside it would pass for it in a list of keys — to a person, or to a
model that a web page has asked to write one.
"""

from __future__ import annotations

import re
import unicodedata

from signoff.errors import ErrorCode, Unprocessable
from signoff.kit.untrusted import clean_untrusted_text
from signoff.models.memory import CORE_KEY

MAX_KEY_LENGTH = 100
KEY_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.:-]{{0,{MAX_KEY_LENGTH - 1}}}$"
_KEY = re.compile(KEY_PATTERN)

# Letters of other scripts drawn like ASCII letters, after case folding (so capitals too):
# Cyrillic, Greek, Armenian and a few Latin variants; and the digit 0 for the letter o. NFKC
# already turns fullwidth, mathematical, circled and ligature forms into ASCII. A short list
# of what looks like the letters of "core" and their neighbours, not Unicode's whole
# confusables table: the comparison only has to catch what reads as one word.
_LOOKALIKES = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "с": "c",
        "ԁ": "d",
        "е": "e",
        "ё": "e",
        "г": "r",
        "һ": "h",
        "н": "h",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "к": "k",
        "ӏ": "l",
        "м": "m",
        "п": "n",
        "о": "o",
        "р": "p",
        "ԛ": "q",
        "ѕ": "s",
        "т": "t",
        "у": "y",
        "ѵ": "v",
        "ԝ": "w",
        "х": "x",
        # Greek
        "α": "a",
        "β": "b",
        "ϲ": "c",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "σ": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "γ": "y",
        # Armenian
        "օ": "o",
        "ո": "n",
        "ս": "u",
        "ց": "g",
        # Latin variants
        "ı": "i",
        "ɑ": "a",
        "ɡ": "g",
        "ɾ": "r",
        "ʀ": "r",
        "ᴄ": "c",
        "ᴏ": "o",
        "ᴇ": "e",
        "0": "o",
    }
)


def clean_key(key: str) -> str:
    """A key as a model or a form wrote it, made plain: invisible and reordering characters
    removed (``kit/untrusted.py``), NFKC (fullwidth ``ｎｏｔｅ`` is ``note``), trimmed."""
    return unicodedata.normalize("NFKC", clean_untrusted_text(key)).strip()


def key_skeleton(key: str) -> str:
    """What a key reads as: cleaned, NFKC, case-folded, lookalike letters of other scripts
    mapped to the ASCII letters they are drawn like, and only letters and digits kept (so
    spaces, dots and dashes between letters do not count). Two keys with one skeleton look
    alike; the skeleton of ``C.O.R.E`` and of ``соrе`` is ``core``."""
    folded = clean_key(key).casefold().translate(_LOOKALIKES)
    return "".join(char for char in folded if char.isalnum())


def looks_like_core(key: str) -> bool:
    """``core`` itself, or any spelling of it (see :func:`key_skeleton`)."""
    return key_skeleton(key) == CORE_KEY


def check_key(key: str) -> str:
    """The key as it is stored, or 422: it must match :data:`KEY_PATTERN`, and only ``core``
    itself may look like ``core`` (who may write ``core`` is the caller's rule)."""
    if key != CORE_KEY and looks_like_core(key):
        raise Unprocessable(
            f"The key {key!r} reads as 'core', the team's voice: choose another name.",
            code=ErrorCode.MEMORY_KEY_RESERVED,
        )
    if not _KEY.fullmatch(key):
        raise Unprocessable(
            f"A memory key is 1 to {MAX_KEY_LENGTH} characters: ASCII letters, digits and "
            "_ . : - (starting with a letter or digit).",
            code=ErrorCode.MEMORY_KEY_INVALID,
        )
    return key
