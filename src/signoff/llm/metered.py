"""The model with its metrics: each request's latency (by the tool it was asked for) and the
tokens it reported (by model), for ``/metrics`` (signoff.metrics)."""

from __future__ import annotations

from time import perf_counter

from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from signoff.metrics import instruments


class MeteredModel(WrapperModel):
    """Wraps the configured model; answers exactly as it does."""

    def __init__(self, wrapped: Model) -> None:
        super().__init__(wrapped)
        # The configured name, not the provider's answer (which may carry a date suffix): a
        # label with a bounded set of values.
        self._label = wrapped.model_name
        instruments.prepare_model(self._label)

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        started = perf_counter()
        response = await self.wrapped.request(messages, model_settings, model_request_parameters)
        tools = model_request_parameters.output_tools
        tool = tools[0].name if len(tools) == 1 else "other"
        instruments.MODEL_LATENCY.labels(tool).observe(perf_counter() - started)
        usage = response.usage
        instruments.record_tokens(self._label, usage.input_tokens, usage.output_tokens)
        return response
