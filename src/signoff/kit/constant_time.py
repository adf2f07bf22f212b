"""A secret a client sent, compared with ours in constant time.

``hmac.compare_digest`` raises TypeError for text with non-ASCII characters, and a client
chooses what it sends (a header, a cookie, a form field): compare UTF-8 bytes instead.
"""

from __future__ import annotations

import hmac


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
