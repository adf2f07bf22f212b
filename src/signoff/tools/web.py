"""The step-agent side of the three tools that reach outside Signoff.

The providers (``search``, ``extract``, ``images``) return outcomes, never raise; here they are
turned into what the agent sees. Web text reaches the agent fenced as untrusted data.
"""

from __future__ import annotations

from pydantic_ai import RunContext

from signoff.tools import extract, images, search
from signoff.tools.base import ToolContext, ToolResult, ToolWarning


async def web_search(ctx: RunContext[ToolContext], query: str, max_results: int = 5) -> ToolResult:
    """Search the web for current facts, news and sources."""
    outcome = await search.web_search(
        ctx.deps.settings, query, max_results=max(1, min(max_results, 10))
    )
    warnings = []
    if outcome.error is not None:
        if outcome.setting is not None:
            warning = ToolWarning(
                "search_not_configured",
                f"The web search did not run: {outcome.error}",
                outcome.setting,
            )
        else:
            warning = ToolWarning("search_failed", f"The web search failed: {outcome.error}")
        warnings.append(warning)
    return ToolResult(
        text=outcome.for_agent(),
        data={
            "query": query,
            "results": [result.__dict__ for result in outcome.results],
            **({"error": outcome.error} if outcome.error else {}),
        },
        warnings=warnings,
    )


async def web_extract(ctx: RunContext[ToolContext], url: str) -> ToolResult:
    """Fetch one web page and extract its main text."""
    outcome = await extract.web_extract(ctx.deps.settings, url)
    warnings = []
    if outcome.error is not None:
        if outcome.refused:
            warning = ToolWarning(
                "fetch_refused",
                f"The page was not fetched: Signoff's fetch guard refused it ({outcome.error}).",
            )
        else:
            warning = ToolWarning(
                "fetch_failed", f"The page could not be read: {outcome.url}: {outcome.error}"
            )
        warnings.append(warning)
    return ToolResult(
        text=outcome.for_agent(),
        data={
            "url": url,
            "title": outcome.title,
            **({"error": outcome.error} if outcome.error else {}),
        },
        warnings=warnings,
    )


async def generate_image(
    ctx: RunContext[ToolContext], prompt: str, alt_text: str = ""
) -> ToolResult:
    """Create an image from a written prompt. A person approves it before it is used."""
    outcome = await images.generate_image(ctx.deps.settings, prompt)
    if outcome.error or not outcome.image:
        # Never sent for approval: the engine retries the step, then fails it.
        return ToolResult(text=f"Image generation failed: {outcome.error}", failed=True)
    description = alt_text.strip() or prompt.strip()
    return ToolResult(
        text=f"Generated an image ({outcome.provider}) for the prompt: {prompt.strip()}",
        asset_type="image",
        content=description,
        data={"prompt": prompt.strip(), "altText": description, "provider": outcome.provider},
        blob=outcome.image,
        mime_type=outcome.mime_type or "image/png",
        warnings=[
            ToolWarning(
                "image_placeholder",
                "This is a placeholder drawn offline: no image provider is configured.",
                "SIGNOFF_IMAGE_BASE_URL",
            )
        ]
        if outcome.provider == images.PLACEHOLDER_PROVIDER
        else [],
    )
