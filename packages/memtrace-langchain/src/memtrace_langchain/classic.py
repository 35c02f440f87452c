"""``MemtraceMemory``: memtrace as a classic LangChain ``BaseMemory`` (``langchain-classic``).

For chains still built on ``langchain_classic`` (``ConversationChain``, ``LLMChain(memory=…)``):
the prompt's ``history`` is memtrace's session context, and each turn is remembered in the
session, so a new process (or another agent reading the session) sees the conversation::

    from memtrace_core import connect
    from memtrace_langchain.classic import MemtraceMemory

    memory = MemtraceMemory(memtrace=connect("sqlite:///memtrace.db"), agent_id="bot",
                            session_id="user-42")
    chain = ConversationChain(llm=llm, memory=memory)

Needs the optional extra: ``pip install 'memtrace-langchain[classic]'``.

``BaseMemory`` is deprecated upstream (LangChain removes it in langchain-classic 2.0), so
constructing a ``MemtraceMemory`` emits a ``LangChainDeprecationWarning`` pointing to the
replacement: ``langchain.agents.create_agent`` with memtrace_langchain's ``MemtraceMiddleware``
(session context injected, turns recorded) or ``MemtraceStore`` — the same memories, so a
migration keeps what the classic memory wrote.
"""

from __future__ import annotations

import uuid
import warnings
from typing import Any, Self

try:
    from langchain_classic.base_memory import BaseMemory
    from langchain_classic.memory.utils import get_prompt_input_key
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "memtrace_langchain.classic needs langchain-classic (LangChain's deprecated BaseMemory "
        "lives there): install the extra with pip install 'memtrace-langchain[classic]'"
    ) from exc

from langchain_core._api import warn_deprecated
from langchain_core.messages import BaseMessage, get_buffer_string
from pydantic import ConfigDict, Field, ModelWrapValidatorHandler, SecretStr, model_validator

from memtrace_core.api import AsyncMemoryAPI
from memtrace_core.errors import NotFoundError
from memtrace_core.models import SessionContext

from ._context import HandleField, open_handle

__all__ = ["INPUT_EVENT_TYPE", "OUTPUT_EVENT_TYPE", "MemtraceMemory"]

#: The event type of the memory of a turn's input (the user's message).
INPUT_EVENT_TYPE = "user_message"
#: The event type of the memory of a turn's output (the model's answer).
OUTPUT_EVENT_TYPE = "assistant_message"

_DEPRECATION = (
    "MemtraceMemory is built on langchain-classic's BaseMemory, which LangChain deprecated "
    "(since 0.3.3; removed in langchain-classic 2.0.0). For new code use "
    "langchain.agents.create_agent with memtrace_langchain.MemtraceMiddleware (the session "
    "context in the prompt, turns recorded) or memtrace_langchain.MemtraceStore; they read "
    "and write the same memtrace memories, so the history this memory saved carries over."
)


class MemtraceMemory(BaseMemory):
    """A classic chain memory whose history is a memtrace session.

    * :meth:`load_memory_variables` returns ``{memory_key: context}``, the engine's session
      context of ``session_id`` (markdown by default; ``max_tokens``, ``since`` and
      ``context_format`` are passed to ``get_session_context``; the engine's defaults apply
      when None, e.g. the last 24 h). A session with nothing in it yet gives ``""``.
    * :meth:`save_context` remembers the turn as two ``memory_type`` memories of the session
      (default ``episodic``): the input as event type ``user_message``, the output as
      ``assistant_message``, written atomically in one batch. Which input and output are
      saved follows the classic memories: ``input_key`` / ``output_key`` when set, else the
      only input that is not a memory variable (or ``stop``) and the only output (or
      ``"output"`` among several). Each call is one turn: a message repeated in a later
      turn ("yes") is remembered again (each write carries a dedup key of its own), and
      an empty input or output is not written.
    * :meth:`clear` deletes every memory of ``session_id`` (and nothing of other sessions).

    ``memtrace`` is a handle from ``memtrace_core.connect(...)`` or ``aconnect(...)``, or a URL
    (with ``api_key`` for a memtrace server) that :meth:`close` closes.

    The async twins (``aload_memory_variables``, ``asave_context``, ``aclear``) are native, so
    an ``aconnect`` handle works too (async use only).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    memtrace: HandleField
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    agent_id: str
    session_id: str
    memory_key: str = "history"
    input_key: str | None = None
    output_key: str | None = None
    memory_type: str = "episodic"
    max_tokens: int | None = None
    since: str | None = None
    context_format: str | None = None

    def __init__(self, **data: Any) -> None:
        """Validate the fields and warn that ``BaseMemory`` is deprecated upstream."""
        super().__init__(**data)
        warn_deprecated(
            "0.3.3",
            message=_DEPRECATION,
            removal="2.0.0",
            package="langchain-classic",
            stacklevel=3,
        )

    @model_validator(mode="wrap")
    @classmethod
    def _open(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        return open_handle(data, handler)

    # -- BaseMemory ---------------------------------------------------------------------------

    @property
    def memory_variables(self) -> list[str]:
        """``[memory_key]``: the one variable this memory adds to a chain's inputs."""
        return [self.memory_key]

    def load_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """``{memory_key: session context}`` (``""`` for a session with nothing in it)."""
        try:
            ctx = self.memtrace.sync.get_session_context(self.session_id, **self._context_options())
        except NotFoundError:
            return {self.memory_key: ""}
        return {self.memory_key: ctx.context}

    async def aload_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """:meth:`load_memory_variables`, without blocking the event loop."""
        options = self._context_options()

        async def call(api: AsyncMemoryAPI) -> SessionContext | None:
            try:
                return await api.get_session_context(self.session_id, **options)
            except NotFoundError:
                return None

        ctx = await self.memtrace.run(call)
        return {self.memory_key: ctx.context if ctx is not None else ""}

    def save_context(self, inputs: dict[str, Any], outputs: dict[str, str]) -> None:
        """Remember the turn's input and output as memories of the session."""
        batch = self._turn(inputs, outputs)
        if batch:
            self.memtrace.sync.add_memories(batch)

    async def asave_context(self, inputs: dict[str, Any], outputs: dict[str, str]) -> None:
        """:meth:`save_context`, without blocking the event loop."""
        batch = self._turn(inputs, outputs)
        if batch:
            await self.memtrace.run(lambda api: api.add_memories(batch))

    def clear(self) -> None:
        """Delete this agent's memories of this session (other sessions and agents are untouched)."""
        self.memtrace.sync.delete_memories(session_id=self.session_id, agent_id=self.agent_id)

    async def aclear(self) -> None:
        """:meth:`clear`, without blocking the event loop."""
        await self.memtrace.run(
            lambda api: api.delete_memories(session_id=self.session_id, agent_id=self.agent_id)
        )

    def close(self) -> None:
        """Close the memtrace connection if this memory opened it from a URL."""
        self.memtrace.close()

    # -- translation --------------------------------------------------------------------------

    def _context_options(self) -> dict[str, Any]:
        options = {
            "max_tokens": self.max_tokens,
            "since": self.since,
            "format": self.context_format,
        }
        return {name: value for name, value in options.items() if value is not None}

    def _input_output(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> tuple[Any, Any]:
        """The input and output a classic chat memory would save (its key rules)."""
        input_key = self.input_key or get_prompt_input_key(inputs, self.memory_variables)
        if self.output_key is not None:
            output_key = self.output_key
        elif len(outputs) == 1:
            output_key = next(iter(outputs))
        elif "output" in outputs:
            output_key = "output"
            warnings.warn(
                f"{type(self).__name__} got multiple output keys: {list(outputs)}; saving "
                "'output' (set output_key to choose another)",
                stacklevel=3,
            )
        else:
            raise ValueError(
                f"got multiple output keys {list(outputs)} and cannot tell which to remember: "
                "set output_key"
            )
        return inputs[input_key], outputs[output_key]

    def _turn(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> list[dict[str, Any]]:
        """The ``add_memories`` batch of one turn (an empty text is not written)."""
        given, answer = self._input_output(inputs, outputs)
        turn = uuid.uuid4().hex
        batch: list[dict[str, Any]] = []
        for role, event_type, value in (
            ("input", INPUT_EVENT_TYPE, given),
            ("output", OUTPUT_EVENT_TYPE, answer),
        ):
            if value is None:  # nothing said (e.g. a chain that returned no output)
                continue
            text = _text(value)
            if not text.strip():
                continue
            batch.append(
                {
                    "agent_id": self.agent_id,
                    "session_id": self.session_id,
                    "memory_type": self.memory_type,
                    "event_type": event_type,
                    "content": text,
                    "dedup_key": f"langchain-classic:{turn}:{role}",
                }
            )
        return batch


def _text(value: Any) -> str:
    """The text of a chain input or output: a string as is, a message's text, messages as
    LangChain's buffer string (``Human: …`` lines), anything else ``str()``."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseMessage):
        return value.text
    if isinstance(value, list) and all(isinstance(v, BaseMessage) for v in value):
        return get_buffer_string(value)
    return str(value)
