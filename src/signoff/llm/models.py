"""The model factory: from settings to a pydantic-ai ``Model`` (README, Configuration).

:func:`build_model` reads ``SIGNOFF_LLM_MODEL`` and friends; a name that cannot work raises
:class:`~signoff.config.ConfigError` when the application starts, rather than a confusing error
on the first plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic_ai.exceptions import UserError
from pydantic_ai.models import Model, infer_model
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.providers import Provider, infer_provider, infer_provider_class
from pydantic_ai.settings import ModelSettings

from signoff.config import ConfigError, Settings
from signoff.llm.offline import OFFLINE_MODEL_NAME, Handler, OfflineModel

# Local OpenAI-compatible servers usually ignore the key, but the client insists on one.
_PLACEHOLDER_API_KEY = "not-needed"


def build_model(settings: Settings, *, offline_handlers: Mapping[str, Handler]) -> Model:
    """The model ``settings`` name; :class:`ConfigError` when it cannot be used.

    Three ways to name a model: ``offline`` (the default), the built-in deterministic model, no
    key, no network; any name with ``SIGNOFF_LLM_BASE_URL`` set, a model of that
    OpenAI-compatible server (:func:`_compatible_server_model`); otherwise the library's own
    names (``openai:gpt-4o``, ``anthropic:claude-…``, ``ollama:…``), with
    ``SIGNOFF_LLM_API_KEY`` as the key when set, or the provider's environment variables.
    ``offline_handlers`` answer the output tools when that model is ``offline``.
    """
    name = settings.llm_model.strip()
    if name.lower() == OFFLINE_MODEL_NAME:
        return OfflineModel(offline_handlers, delay_seconds=settings.offline_delay_seconds)
    if not name:
        raise ConfigError(
            "SIGNOFF_LLM_MODEL is empty: set it to 'offline' or a model name "
            "such as 'openai:gpt-4o'"
        )
    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    base_url = settings.llm_base_url.strip()
    if base_url:
        return _compatible_server_model(name, base_url, api_key)
    try:
        return infer_model(name, provider_factory=_provider_factory(api_key))
    except (UserError, ImportError) as exc:
        # The library's advice to try its test model makes no sense to a Signoff operator.
        reason = re.sub(r"\s*To try Pydantic AI.*", "", str(exc), flags=re.DOTALL)
        raise ConfigError(
            f"SIGNOFF_LLM_MODEL={name!r} cannot be used: {reason} (SIGNOFF_LLM_MODEL takes "
            "'offline', or a name such as 'openai:gpt-4o' or 'anthropic:claude-sonnet-4-5' with "
            "SIGNOFF_LLM_API_KEY, or any model of the OpenAI-compatible server at "
            "SIGNOFF_LLM_BASE_URL)"
        ) from exc


def model_settings(settings: Settings) -> ModelSettings:
    """The per-request settings every agent call passes: the timeout of one HTTP attempt."""
    return {"timeout": settings.llm_timeout_seconds}


def model_label(model: Model) -> str:
    """The model named for people: ``offline``, ``llama3.2 via http://…``, ``openai:gpt-4o``."""
    while isinstance(model, WrapperModel):  # e.g. llm.metered.MeteredModel
        model = model.wrapped
    if isinstance(model, OfflineModel):
        return OFFLINE_MODEL_NAME
    # Imported here: the OpenAI SDK takes about half a second of CPU to import, which every
    # process (and the offline model) would otherwise pay at start.
    from pydantic_ai.models.openai import OpenAIChatModel

    base_url = model.base_url
    if (
        isinstance(model, OpenAIChatModel)
        and base_url
        and urlsplit(base_url).hostname != "api.openai.com"
    ):
        return f"{model.model_name} via {base_url.rstrip('/')}"
    return f"{model.system}:{model.model_name}"


def _compatible_server_model(name: str, base_url: str, api_key: str | None) -> Model:
    """A model of an OpenAI-compatible server (Ollama, vLLM, LM Studio, a test fake), over chat
    completions, which they all speak. A ``provider:`` prefix on the name is dropped
    (``ollama:llama3.2`` → ``llama3.2``); a tag such as ``llama3.2:3b`` is kept."""
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise ConfigError(
            f"SIGNOFF_LLM_BASE_URL={base_url!r} must start with http:// or https:// "
            "(e.g. http://127.0.0.1:11434/v1 for Ollama)"
        )
    from pydantic_ai.models.openai import OpenAIChatModel  # lazily, as in model_label
    from pydantic_ai.providers.openai import OpenAIProvider

    prefix, _, rest = name.partition(":")
    if rest and _is_provider(prefix):
        name = rest
    return OpenAIChatModel(
        name,
        provider=OpenAIProvider(base_url=base_url, api_key=api_key or _PLACEHOLDER_API_KEY),
    )


def _is_provider(prefix: str) -> bool:
    try:
        infer_provider_class(prefix)
    except ValueError:
        return False
    except ImportError:  # a provider whose SDK is not installed is still a provider name
        return True
    return True


def _provider_factory(api_key: str | None) -> Callable[[str], Provider[Any]]:
    """How :func:`infer_model` builds the provider: with ``SIGNOFF_LLM_API_KEY`` when set."""
    if api_key is None:
        return infer_provider

    def with_key(provider_name: str) -> Provider[Any]:
        try:
            provider_class = infer_provider_class(provider_name)
        except ValueError as exc:
            raise UserError(f"unknown model provider {provider_name!r}") from exc
        try:
            return provider_class(api_key=api_key)  # type: ignore[call-arg]
        except TypeError as exc:
            raise UserError(
                f"SIGNOFF_LLM_API_KEY cannot be passed to the {provider_name!r} provider; "
                "configure it with that provider's environment variables instead"
            ) from exc

    return with_key
