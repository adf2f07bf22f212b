"""What tokens cost: a small table of common models' list prices, overridable by
``SIGNOFF_LLM_PRICES``, for the estimated cost shown beside token counts.

An estimate: providers change prices, cached input is cheaper, and a model missing from the
table has no price (``None``), never a guessed one.
"""

from __future__ import annotations

from collections.abc import Mapping

from signoff.config import Settings
from signoff.llm.offline import OFFLINE_MODEL_NAME

# USD per million (input, output) tokens, list prices. A name matches its own entry or, failing
# that, the longest entry it extends with "-…" (a dated version: gpt-4o-2024-08-06 → gpt-4o).
PRICES: dict[str, tuple[float, float]] = {
    OFFLINE_MODEL_NAME: (0.0, 0.0),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-opus-4": (15.00, 75.00),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4-5": (5.00, 25.00),
}


def price_of(
    model_name: str, overrides: Mapping[str, tuple[float, float]] = {}
) -> tuple[float, float] | None:
    """The (input, output) price per million tokens of ``model_name``, or None when unknown.

    ``openai:gpt-4o`` is priced as ``gpt-4o``: the provider prefix is not part of the name.
    """
    table = {**PRICES, **{name.lower(): price for name, price in overrides.items()}}
    name = model_name.strip().lower()
    for candidate in (name, name.split(":", 1)[1] if ":" in name else None):
        if candidate is None:
            continue
        if candidate in table:
            return table[candidate]
        extended = [key for key in table if candidate.startswith(key + "-")]
        if extended:
            return table[max(extended, key=len)]
    return None


def estimated_cost_usd(
    settings: Settings, model_name: str, input_tokens: int, output_tokens: int
) -> float | None:
    """What the tokens cost with ``model_name``, in USD rounded to a hundredth of a cent;
    None when the model's price is not known."""
    price = price_of(model_name, settings.llm_prices)
    if price is None:
        return None
    cost = (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000
    return round(cost, 4)
