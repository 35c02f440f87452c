"""Offline models for the OpenAI Agents SDK tests, on 0.20 (no ``agents.testing``) and 0.24.

* :class:`FakeModel` — a hand-written :class:`agents.models.interface.Model`: plays scripted
  turns (each a list of output items) and records every call's arguments (``calls``: the
  system instructions, the input, the tools, streamed or not). Works on 0.20 and 0.24.
* :func:`scripted_model` — the SDK's own ``agents.testing.ScriptedModel`` when the installed
  SDK has it (0.21+), else :class:`FakeModel`; both expose ``calls[i].system_instructions`` /
  ``.input`` / ``.tools``.
* :func:`text` / :func:`call` — the output items of a turn; :func:`run_agent` — one run by
  ``Runner.run``, ``Runner.run_sync`` or ``Runner.run_streamed`` (``MODES``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from agents import Runner
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

HAS_TESTING = importlib.util.find_spec("agents.testing") is not None

#: The three ways to run an agent.
MODES = ("run", "run_sync", "run_streamed")


def text(value: str, *, item_id: str = "msg") -> Any:
    """An assistant text output item."""
    return ResponseOutputMessage(
        id=item_id,
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(text=value, type="output_text", annotations=[], logprobs=[])],
    )


def call(name: str, arguments: dict[str, Any] | str, *, call_id: str) -> Any:
    """A function-tool call output item."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ResponseFunctionToolCall(
        id=call_id, call_id=call_id, type="function_call", name=name, arguments=args
    )


@dataclass
class RecordedCall:
    """What one model call received (the fields of ``agents.testing.ModelCall`` we use)."""

    system_instructions: str | None
    input: Any
    tools: list[Any]
    handoffs: list[Any]
    streamed: bool


class FakeModel(Model):
    """Plays ``turns`` in order (one list of output items per model call) and records calls."""

    def __init__(self, turns: Sequence[Sequence[Any]]) -> None:
        self.turns = [list(t) for t in turns]
        self.calls: list[RecordedCall] = []

    def _next(
        self, system_instructions: str | None, input: Any, tools: Any, handoffs: Any, streamed: bool
    ) -> list[Any]:
        self.calls.append(
            RecordedCall(
                system_instructions=system_instructions,
                input=json.loads(json.dumps(input, default=str)),
                tools=list(tools),
                handoffs=list(handoffs),
                streamed=streamed,
            )
        )
        if not self.turns:
            raise AssertionError(f"unexpected model call #{len(self.calls)}")
        return self.turns.pop(0)

    async def get_response(
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        output = self._next(system_instructions, input, tools, handoffs, streamed=False)
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    async def stream_response(  # type: ignore[override]
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        output = self._next(system_instructions, input, tools, handoffs, streamed=True)
        response = Response(
            id="fake-response",
            created_at=0,
            model="fake-model",
            object="response",
            output=output,
            tool_choice="none",
            tools=[],
            top_p=None,
            parallel_tool_calls=False,
            status="completed",
        )
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=0
        )


def scripted_model(turns: Sequence[Sequence[Any]]) -> Any:
    """``agents.testing.ScriptedModel(turns)`` when the SDK has it, else :class:`FakeModel`."""
    if HAS_TESTING:
        from agents.testing import ScriptedModel

        return ScriptedModel([list(t) for t in turns])
    return FakeModel(turns)


def instructions_received(model: Any) -> list[str | None]:
    """The system instructions of each model call, in order."""
    return [c.system_instructions for c in model.calls]


def run_agent(mode: str, agent: Any, input: Any, **kwargs: Any) -> Any:
    """One run of ``agent`` by ``mode`` (one of :data:`MODES`); returns the run result (for
    ``run_streamed`` after consuming every event). Call from synchronous code."""
    if mode == "run":
        return asyncio.run(Runner.run(agent, input, **kwargs))
    if mode == "run_sync":
        return Runner.run_sync(agent, input, **kwargs)
    if mode == "run_streamed":

        async def streamed() -> Any:
            result = Runner.run_streamed(agent, input, **kwargs)
            async for _ in result.stream_events():
                pass
            return result

        return asyncio.run(streamed())
    raise ValueError(mode)
