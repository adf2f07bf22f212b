"""generate_image against a local OpenAI-compatible images server, the offline placeholder, and
the failures (not configured, provider errors, bad data) that must come back as results."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from signoff.config import Settings
from signoff.tools.images import (
    MAX_IMAGE_BYTES,
    PLACEHOLDER_PROVIDER,
    draw_placeholder,
    generate_image,
)
from tests.support.fakeweb import FakeWeb, Reply

PROMPT = "A watercolour of two hydrogen tugboats guiding a container ship at dawn"
PATH = "/v1/images/generations"


def _png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _answer(**image: Any) -> dict[str, Any]:
    """An Images API answer shaped like OpenAI's."""
    return {
        "created": 1772442000,
        "data": [image],
        "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210},
    }


@pytest.fixture
def provider_settings(
    web: FakeWeb, make_settings: Callable[..., Settings]
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "image_base_url": web.url(""),
            "image_api_key": "sk-test-images",
            "llm_model": "openai:gpt-4o",
        }
        return make_settings(**{**values, **overrides})

    return make


async def test_a_gpt_image_model_gets_the_documented_request_and_its_image_is_kept(
    web: FakeWeb, provider_settings: Callable[..., Settings]
) -> None:
    png = _png()
    web.route(PATH, Reply(json=_answer(b64_json=base64.b64encode(png).decode())))

    outcome = await generate_image(provider_settings(image_model="gpt-image-1"), PROMPT)

    assert outcome.error is None
    assert (outcome.image, outcome.mime_type) == (png, "image/png")
    assert (outcome.width, outcome.height) == (64, 48)
    assert outcome.provider == "gpt-image-1 at 127.0.0.1"
    seen = web.requests[0]
    assert (seen.method, seen.path) == ("POST", PATH)
    assert seen.headers["authorization"] == "Bearer sk-test-images"
    # gpt-image models always answer base64 and refuse response_format.
    assert seen.json() == {"model": "gpt-image-1", "prompt": PROMPT, "n": 1, "size": "1024x1024"}
    assert outcome.for_agent().startswith("Generated an image (PNG, 64x48, ")


async def test_other_models_are_asked_for_base64_and_a_v1_suffix_is_tolerated(
    web: FakeWeb, provider_settings: Callable[..., Settings]
) -> None:
    web.route(PATH, Reply(json=_answer(b64_json=base64.b64encode(_png()).decode())))
    settings = provider_settings(image_model="dall-e-3", image_base_url=web.url("/v1/"))

    outcome = await generate_image(settings, PROMPT, size="1792x1024")

    assert outcome.error is None
    assert web.requests[0].path == PATH
    assert web.requests[0].json() == {
        "model": "dall-e-3",
        "prompt": PROMPT,
        "n": 1,
        "size": "1792x1024",
        "response_format": "b64_json",
    }


async def test_an_image_returned_by_url_is_fetched_through_the_safe_client(
    web: FakeWeb, provider_settings: Callable[..., Settings]
) -> None:
    png = _png(32, 32)
    web.route(PATH, Reply(json=_answer(url=web.url("/files/img-1.png"))))
    web.route("/files/img-1.png", Reply(body=png, content_type="image/png"))

    outcome = await generate_image(provider_settings(), PROMPT)

    assert (outcome.error, outcome.image) == (None, png)


async def test_an_image_url_pointing_inside_the_network_is_refused(
    web: FakeWeb,
    provider_settings: Callable[..., Settings],
    connect_attempts: list[tuple[str, int]],
) -> None:
    web.route(PATH, Reply(json=_answer(url="http://169.254.169.254/latest/meta-data/")))

    outcome = await generate_image(provider_settings(), PROMPT)

    assert outcome.error is not None
    assert "could not be downloaded" in outcome.error
    assert "only public internet addresses" in outcome.error
    assert all(port == web.port for _, port in connect_attempts)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Reply(status=500, json={"error": {"message": "The server had an error."}}),
            "the image provider failed (HTTP 500): The server had an error. Try again later.",
        ),
        (
            Reply(status=401, json={"error": {"message": "Incorrect API key provided"}}),
            "the image provider refused our key (HTTP 401); check SIGNOFF_IMAGE_API_KEY.",
        ),
        (
            Reply(
                status=400,
                json={
                    "error": {
                        "message": "Your request was rejected by the safety system.",
                        "type": "image_generation_user_error",
                        "code": "moderation_blocked",
                    }
                },
            ),
            "the image provider rejected the request (HTTP 400): Your request was rejected by "
            "the safety system.",
        ),
        (
            Reply(status=429, json={"error": {"message": "Rate limit reached"}}),
            "the image provider is rate-limiting us or the quota is used up (HTTP 429).",
        ),
        (Reply(json={"created": 1, "data": []}), "the image provider answered without an image."),
        (Reply(body=b"<html>gateway</html>"), "the image provider answered without an image."),
        (
            Reply(json=_answer(b64_json="not base64!!")),
            "the image provider sent an image that is not valid base64.",
        ),
        (
            Reply(json=_answer(b64_json=base64.b64encode(b"GIF89a but not really").decode())),
            "the image provider sent data that is not a PNG, JPEG or WebP image.",
        ),
    ],
)
async def test_provider_failures_are_results(
    reply: Reply, expected: str, web: FakeWeb, provider_settings: Callable[..., Settings]
) -> None:
    web.route(PATH, reply)

    outcome = await generate_image(provider_settings(), PROMPT)

    assert (outcome.image, outcome.error) == (None, expected)
    assert outcome.for_agent() == f"Image generation failed: {expected}"


async def test_a_provider_that_hangs_is_a_result(
    web: FakeWeb, provider_settings: Callable[..., Settings]
) -> None:
    web.route(PATH, Reply(json=_answer(b64_json=""), delay=2))

    outcome = await generate_image(provider_settings(), PROMPT, timeout_seconds=0.1)

    assert outcome.error == "the image provider did not answer within 0.1 seconds."


async def test_offline_draws_a_deterministic_placeholder(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(llm_model="offline")

    outcome = await generate_image(settings, PROMPT, size="1024x576")
    again = await generate_image(settings, PROMPT, size="1024x576")
    other = await generate_image(settings, "A lighthouse in a storm", size="1024x576")

    assert outcome.error is None
    assert outcome.image is not None
    assert outcome.image == again.image
    assert outcome.image != other.image
    assert (outcome.mime_type, outcome.width, outcome.height) == ("image/png", 1024, 576)
    assert outcome.provider == PLACEHOLDER_PROVIDER
    with Image.open(io.BytesIO(outcome.image)) as image:
        assert (image.format, image.size) == ("PNG", (1024, 576))
        # Not a blank canvas: the heading and the prompt are drawn in dark ink.
        darkest, _ = image.convert("L").getextrema()
        assert isinstance(darkest, int)
        assert darkest < 100
    assert "placeholder" in outcome.for_agent()
    assert PROMPT in outcome.for_agent()
    assert len(outcome.image) < MAX_IMAGE_BYTES


def test_the_placeholder_copes_with_any_prompt() -> None:
    long_prompt = "Ünïcödé — “quotes”, 中文, emoji 🚢 and a very long description " * 40
    for size in ("1024x1024", "auto", "4096x4096", "300x300"):
        with Image.open(io.BytesIO(draw_placeholder(long_prompt, size))) as image:
            image.verify()


async def test_no_provider_and_a_real_model_is_not_configured(
    make_settings: Callable[..., Settings],
) -> None:
    outcome = await generate_image(make_settings(llm_model="openai:gpt-4o"), PROMPT)

    assert outcome.error is not None
    assert outcome.error.startswith("No image provider is configured (set SIGNOFF_IMAGE_BASE_URL")


@pytest.mark.parametrize("base_url", ["images.lan:8000", "http://", "ftp://images.lan"])
async def test_an_invalid_provider_url_is_reported(
    base_url: str, make_settings: Callable[..., Settings]
) -> None:
    outcome = await generate_image(make_settings(image_base_url=base_url), PROMPT)

    assert outcome.error == "SIGNOFF_IMAGE_BASE_URL must be an http:// or https:// URL."


async def test_an_empty_prompt_is_refused(make_settings: Callable[..., Settings]) -> None:
    outcome = await generate_image(make_settings(), "   ")

    assert outcome.error == "The image prompt is empty."
