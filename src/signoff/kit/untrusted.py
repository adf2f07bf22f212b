"""Text from outside (web pages, search results) made safe to show a model as data.

:func:`clean_untrusted_text` removes the characters that hide or reorder text;
:func:`fence_untrusted` puts text between markers that the text itself cannot close.
"""

from __future__ import annotations

import re

# Characters that change what a reader sees without being seen themselves: Unicode format
# characters (Cf: zero-width space/joiners, bidi embeddings/overrides/isolates, word joiner,
# BOM, soft hyphen, interlinear annotations, the tag characters U+E0000–E007F that can smuggle
# ASCII), control characters except tab and newline, variation selectors, and the Hangul fillers
# and combining grapheme joiner that render as nothing. tests/kit/test_untrusted.py checks this
# list against unicodedata's Cf category.
_INVISIBLE = re.compile(
    "["
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef"
    "]"
)
_LINE_BREAKS = re.compile("\r\n?|[\u2028\u2029\x85]")


def clean_untrusted_text(text: str) -> str:
    """``text`` without invisible or reordering characters, with plain newlines."""
    return _INVISIBLE.sub("", _LINE_BREAKS.sub("\n", text))


def fence_untrusted(tag: str, text: str) -> str:
    """``text`` between ``<tag>`` lines. Any marker of ours inside it (``<untrusted_…``) is
    neutralised first, so fetched text cannot close its own fence and speak outside it."""
    neutral = re.sub(r"<(\s*/?\s*)(untrusted_)", r"&lt;\1\2", text, flags=re.IGNORECASE)
    return f"<{tag}>\n{neutral}\n</{tag}>"
