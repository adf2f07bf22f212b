"""The scanner guard: link scanners and unfurlers must never decide.

GET and HEAD requests from these user agents get 200 with no side effect, in every link mode.
The list is published in the API docs. Matching is case-insensitive on substrings. An empty
user agent counts as a bot (browsers always send one).
"""

from __future__ import annotations

BOT_USER_AGENT_MARKERS: tuple[str, ...] = (
    # generic words crawlers put in their user agents
    "bot",
    "crawler",
    "spider",
    "slurp",
    "preview",
    "scanner",
    "fetcher",
    # link unfurlers and image proxies of chat and mail
    "facebookexternalhit",
    "slack",
    "twitterbot",
    "linkedinbot",
    "discordbot",
    "telegrambot",
    "whatsapp",
    "skypeuripreview",
    "googleimageproxy",
    "google-safety",
    "yahoomailproxy",
    "microsoft office",
    "ms-office",
    "msoffice",
    "outlook",
    # mail security gateways
    "mimecast",
    "proofpoint",
    "barracuda",
    "safelinks",
    "symantec",
    "trendmicro",
    "sophos",
    "fireeye",
    # programmatic HTTP clients (an API client decides with POST)
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "java/",
    "apache-httpclient",
    "libwww-perl",
    "curl/",
    "wget/",
)


def is_bot(user_agent: str | None) -> bool:
    if not user_agent or not user_agent.strip():
        return True
    lowered = user_agent.lower()
    return any(marker in lowered for marker in BOT_USER_AGENT_MARKERS)
