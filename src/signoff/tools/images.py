"""``generate_image``: an image from a prompt, for a step that a person approves (docs/api.md,
Tools).

With ``SIGNOFF_IMAGE_BASE_URL`` set, an OpenAI-compatible images API draws it:
``POST {base}/v1/images/generations`` with ``{"model", "prompt", "n": 1, "size"}`` and a Bearer
key. We ask for ``response_format: "b64_json"`` except from OpenAI's ``gpt-image-*`` models, which
always answer base64 and refuse that parameter ("Unknown parameter: 'response_format'"). An
answer that only carries a ``url`` is downloaded through the SSRF-safe client: the provider chose
that URL, not us. The provider endpoint itself is a trusted setting (plain httpx).

With no provider and the built-in ``offline`` model, a placeholder is drawn locally with Pillow:
a soft background, a line saying it is a placeholder, and the prompt. It is deterministic (the
same prompt gives the same bytes), so tests and demos can compare it. With no provider and a
real model, the agent is told that no image provider is configured.

Whatever the source, the bytes are capped (:data:`MAX_IMAGE_BYTES`) and must open and verify as
PNG, JPEG or WebP before anyone sees them. Nothing here raises into the engine: failures are an
:class:`ImageOutcome` with ``error`` set.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import logging
import re
import textwrap
import unicodedata
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image, ImageDraw, ImageFont

from signoff.config import Settings
from signoff.kit.safe_http import FetchError, safe_get, shared_ssl_context
from signoff.kit.untrusted import clean_untrusted_text

logger = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 10 * 1024 * 1024
PLACEHOLDER_PROVIDER = "offline placeholder"
PLACEHOLDER_HEADING = "Placeholder image - drawn offline, no image model configured"

_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_SIZE = re.compile(r"^(\d{2,4})x(\d{2,4})$")
_NOT_CONFIGURED = (
    "No image provider is configured (set SIGNOFF_IMAGE_BASE_URL to an OpenAI-compatible "
    "images API, and SIGNOFF_IMAGE_API_KEY)."
)
# Provider answers carry the image as base64 inside JSON: 4/3 of the image, plus a little.
_MAX_ANSWER_BYTES = MAX_IMAGE_BYTES * 4 // 3 + 64 * 1024
# Pillow's bundled default font covers ASCII; other characters would draw as empty boxes.
_ASCII_STAND_INS = str.maketrans(
    {"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "\n": " "}
)


@dataclass(frozen=True)
class ImageOutcome:
    """The image (``image`` bytes of type ``mime_type``), or why there is none (``error``)."""

    prompt: str
    image: bytes | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    provider: str = ""
    """Who drew it: ``"<model> at <host>"`` or :data:`PLACEHOLDER_PROVIDER`."""
    error: str | None = None

    def for_agent(self) -> str:
        """The tool result the model reads (the bytes themselves go to the asset, not the model)."""
        if self.error is not None or self.image is None:
            return f"Image generation failed: {self.error or 'no image was produced.'}"
        kind = (self.mime_type or "image").removeprefix("image/").upper()
        what = f"{kind}, {self.width}x{self.height}, {len(self.image) / 1024:,.0f} KB"
        if self.provider == PLACEHOLDER_PROVIDER:
            return (
                f"Drew a placeholder image ({what}) for the prompt below, because no image "
                f"model is configured (offline mode).\nPrompt: {self.prompt}"
            )
        return f"Generated an image ({what}) with {self.provider}.\nPrompt: {self.prompt}"


async def generate_image(
    settings: Settings,
    prompt: str,
    *,
    size: str = "1024x1024",
    timeout_seconds: float = 180.0,
) -> ImageOutcome:
    """Draw an image for ``prompt``. Never raises for a provider's failure.

    ``size`` is passed to the provider as is (``1024x1024``, ``1536x1024``, ``auto``, … as the
    model allows); the placeholder uses it when it reads ``WxH`` (256 to 2048 a side).
    ``timeout_seconds`` bounds the provider call: image models commonly take a minute.
    """
    prompt = " ".join(prompt.split())
    if not prompt:
        return ImageOutcome(prompt=prompt, error="The image prompt is empty.")
    if settings.image_base_url.strip():
        return await _from_provider(settings, prompt, size, timeout_seconds)
    if settings.llm_model == "offline":
        image = await asyncio.to_thread(draw_placeholder, prompt, size)
        return await _checked(prompt, image, PLACEHOLDER_PROVIDER)
    return ImageOutcome(prompt=prompt, error=_NOT_CONFIGURED)


async def _from_provider(
    settings: Settings, prompt: str, size: str, timeout_seconds: float
) -> ImageOutcome:
    base = settings.image_base_url.strip().rstrip("/").removesuffix("/v1")
    endpoint = f"{base}/v1/images/generations"
    try:
        host = httpx.URL(base).host
    except httpx.InvalidURL:
        host = ""
    if not base.startswith(("http://", "https://")) or not host:
        return ImageOutcome(
            prompt=prompt, error="SIGNOFF_IMAGE_BASE_URL must be an http:// or https:// URL."
        )
    provider = f"{settings.image_model} at {host}"
    body: dict[str, Any] = {"model": settings.image_model, "prompt": prompt, "n": 1, "size": size}
    if not settings.image_model.startswith("gpt-image"):
        body["response_format"] = "b64_json"
    headers = {}
    if settings.image_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.image_api_key.get_secret_value()}"

    def failed(message: str) -> ImageOutcome:
        logger.warning("generate_image via %s failed: %s", provider, message)
        return ImageOutcome(prompt=prompt, provider=provider, error=message)

    try:
        async with (
            httpx.AsyncClient(timeout=timeout_seconds, verify=shared_ssl_context()) as client,
            client.stream("POST", endpoint, json=body, headers=headers) as response,
        ):
            answer = await _read_capped(response)
            status = response.status_code
    except httpx.TimeoutException:
        return failed(f"the image provider did not answer within {timeout_seconds:g} seconds.")
    except httpx.RequestError as exc:  # connection refused, reset, bad encoding…
        return failed(f"the image provider could not be reached ({type(exc).__name__}).")
    if answer is None:
        return failed("the image provider's answer is larger than the 10 MB image limit.")
    if status != 200:
        return failed(_status_problem(status, answer))
    try:
        item = _first_image(answer)
    except ValueError:
        return failed("the image provider answered without an image.")
    if isinstance(item.get("b64_json"), str):
        encoded: str = item["b64_json"]
        if len(encoded) * 3 // 4 > MAX_IMAGE_BYTES:
            return failed("the generated image is larger than the 10 MB limit.")
        try:
            image = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return failed("the image provider sent an image that is not valid base64.")
    elif isinstance(item.get("url"), str):
        try:
            fetched = await safe_get(
                item["url"], timeout=timeout_seconds, max_bytes=MAX_IMAGE_BYTES
            )
        except FetchError as exc:
            return failed(f"the generated image could not be downloaded: {exc.message}")
        if fetched.truncated:
            return failed("the generated image is larger than the 10 MB limit.")
        if fetched.status != 200:
            return failed(f"the generated image could not be downloaded (HTTP {fetched.status}).")
        image = fetched.body
    else:
        return failed("the image provider answered without an image.")
    return await _checked(prompt, image, provider)


async def _read_capped(response: httpx.Response) -> bytes | None:
    """The whole answer, or None past :data:`_MAX_ANSWER_BYTES` (a provider is trusted, not
    unbounded)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > _MAX_ANSWER_BYTES:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _first_image(answer: bytes) -> dict[str, Any]:
    """``data[0]`` of an Images API answer; ValueError for anything shaped otherwise."""
    try:
        item = json.loads(answer)["data"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ValueError("no image in the answer") from None
    if not isinstance(item, dict):
        raise ValueError("no image in the answer")
    return item


def _status_problem(status: int, answer: bytes) -> str:
    if status in (401, 403):
        return f"the image provider refused our key (HTTP {status}); check SIGNOFF_IMAGE_API_KEY."
    if status == 429:
        return "the image provider is rate-limiting us or the quota is used up (HTTP 429)."
    detail = _provider_message(answer)
    if status >= 500:
        return f"the image provider failed (HTTP {status}){detail}. Try again later."
    # 400s carry the useful part, e.g. a prompt refused by the provider's safety system.
    return f"the image provider rejected the request (HTTP {status}){detail}."


def _provider_message(answer: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error answer, cleaned and short."""
    try:
        error = json.loads(answer).get("error")
    except (ValueError, AttributeError):
        return ""
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str) or not message.strip():
        return ""
    text = " ".join(clean_untrusted_text(message).split()).rstrip(".")
    return ": " + (text if len(text) <= 300 else text[:299] + "…")


async def _checked(prompt: str, image: bytes, provider: str) -> ImageOutcome:
    """The outcome for ``image`` if it really is a PNG, JPEG or WebP within the size cap."""
    if len(image) > MAX_IMAGE_BYTES:
        return ImageOutcome(
            prompt=prompt, provider=provider, error="the image is larger than the 10 MB limit."
        )
    try:
        kind, width, height = await asyncio.to_thread(_verify, image)
    except ValueError as exc:
        return ImageOutcome(prompt=prompt, provider=provider, error=str(exc))
    return ImageOutcome(
        prompt=prompt,
        image=image,
        mime_type=_FORMATS[kind],
        width=width,
        height=height,
        provider=provider,
    )


def _verify(image: bytes) -> tuple[str, int, int]:
    """Format and size of ``image`` once Pillow has verified it. Only the three formats are
    tried: untrusted bytes never reach Pillow's other decoders."""
    try:
        with Image.open(io.BytesIO(image), formats=list(_FORMATS)) as opened:
            kind, (width, height) = opened.format or "", opened.size
            opened.verify()
    except Exception:  # Pillow raises many types (OSError, SyntaxError, DecompressionBomb…)
        raise ValueError(
            "the image provider sent data that is not a PNG, JPEG or WebP image."
        ) from None
    return kind, width, height


def draw_placeholder(prompt: str, size: str = "1024x1024") -> bytes:
    """A PNG that says it is a placeholder and shows the prompt; the same prompt and size give
    the same bytes."""
    width, height = _placeholder_size(size)
    digest = hashlib.sha256(prompt.encode()).digest()
    # A soft colour chosen by the prompt, so different prompts are told apart at a glance.
    background = tuple(215 + value % 35 for value in digest[:3])
    ink = (45, 45, 55)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    margin = width // 16
    draw.rectangle(
        (margin // 2, margin // 2, width - margin // 2, height - margin // 2),
        outline=(150, 150, 160),
        width=max(2, width // 400),
    )
    heading_size, body_size = max(14, width // 32), max(12, width // 40)
    # Pillow >= 10.1 bundles a scalable default font (no font file, nothing downloaded).
    heading = ImageFont.load_default(size=heading_size)
    body = ImageFont.load_default(size=body_size)
    y = margin
    for line in _wrap(PLACEHOLDER_HEADING, heading, width - 2 * margin):
        draw.text((margin, y), line, font=heading, fill=ink)
        y += int(heading_size * 1.4)
    y += int(body_size * 1.2)
    line_height = int(body_size * 1.35)
    lines = _wrap(f"Prompt: {_drawable(prompt)}", body, width - 2 * margin)
    room = max(1, (height - margin - y) // line_height)
    if len(lines) > room:
        lines = [*lines[: room - 1], lines[room - 1].rstrip(". ") + " ..."]
    for line in lines:
        draw.text((margin, y), line, font=body, fill=ink)
        y += line_height
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _placeholder_size(size: str) -> tuple[int, int]:
    match = _SIZE.match(size.strip())
    if match:
        width, height = int(match.group(1)), int(match.group(2))
        if 256 <= width <= 2048 and 256 <= height <= 2048:
            return width, height
    return 1024, 1024


def _drawable(text: str) -> str:
    """``text`` in the characters the bundled font has: accents dropped, the rest as ``?``."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_STAND_INS))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return "".join(char if " " <= char <= "~" else "?" for char in plain)


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> list[str]:
    """Lines of ``text`` that fit ``width`` pixels in ``font``."""
    average = max(1.0, font.getlength("abcdefghijklmnopqrstuvwxyz") / 26)
    columns = max(10, int(width / average))
    lines = textwrap.wrap(text, columns) or [""]
    while columns > 10 and max(font.getlength(line) for line in lines) > width:
        columns -= 2
        lines = textwrap.wrap(text, columns)
    return lines
