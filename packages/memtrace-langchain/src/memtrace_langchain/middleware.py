"""memtrace as LangChain agent middleware: what the agent remembered, in every model call.

::

    from langchain.agents import create_agent
    from memtrace_langchain.middleware import MemtraceMiddleware

    agent = create_agent(
        model,
        tools,
        middleware=[MemtraceMiddleware("sqlite:///memory.db", agent_id="support-bot")],
    )

Before each model call, :class:`MemtraceMiddleware` asks memtrace for the LLM-ready context —
the session's when the run has a session that already holds memories, else the agent's across
all its sessions (so a new session, a new thread or a new process starts with what the agent
remembered before, instead of with nothing) — within ``max_tokens`` (the engine's budget), and
adds it to the system message. Optionally (``record_turns=True``) it records each user message
and each assistant reply as memories (event types ``user_message`` / ``assistant_message``).

The agent and session of a run are the constructor's defaults, overridden by the run's context
(``context=Ctx(agent_id=..., session_id=...)``; see :mod:`memtrace_langchain._context`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal, cast

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
)
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool

from memtrace_core.errors import MemtraceError
from memtrace_core.models import AgentContext, BatchResult, SessionContext

from ._context import (
    Call,
    MemtraceTarget,
    Program,
    Scope,
    as_handle,
    context_program,
    drive,
    drive_async,
    resolve_scope,
)

__all__ = ["DEFAULT_HEADING", "MemtraceMiddleware"]

logger = logging.getLogger(__name__)

#: The line that introduces the injected context in the system message.
DEFAULT_HEADING = (
    "Long-term memory (from memtrace): what you recorded in earlier turns and sessions, newest "
    "first. Use it when it is relevant; it may be incomplete."
)

_ModelResult = ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]


class MemtraceMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Agent middleware that injects memtrace context into each model request and, with
    ``record_turns=True``, records the conversation as memories.

    Args:
        memtrace: a handle from ``memtrace_core.connect``/``aconnect``, a ``MemtraceHandle``,
            or a memtrace URL (``sqlite:///…``, ``http://…`` with ``api_key``). An
            ``aconnect`` handle serves only the async path (``agent.ainvoke``).
        agent_id: the agent whose memory is used, unless the run's context has ``agent_id``.
        session_id: the run's session, unless the run's context has ``session_id``.
        max_tokens: the token budget of the injected context, enforced by the engine (newest
            memories kept first); ``None`` for the engine's default size.
        scope: ``"auto"`` (default) injects the session's context when the run's session
            already has memories, else the agent's context across its sessions; ``"agent"``
            always injects the agent's context.
        since: the context's time window (``"7d"``, an ISO date-time; default ``"30d"``, so
            a run next week still sees what the agent learned); ``None`` for the engine's
            configured default (24 h unless configured otherwise).
        context_format: a registered context format (``markdown`` default, ``xml``, …).
        heading: the text placed before the context in the system message.
        record_turns: record each new user message and each assistant reply with text as
            memories of the run's agent and session (off by default).
        user_event_type / assistant_event_type: the event types of recorded turns.
        with_tools: also give the agent the memtrace tools (``True`` for all of them, or an
            iterable of tool names; see :func:`memtrace_langchain.tools.memtrace_tools`).
        raise_errors: raise memtrace errors instead of logging them and letting the model call
            go on without memory (the default: a memory outage does not stop the agent).
        api_key: the server key when ``memtrace`` is an ``http(s)://`` URL.

    Recording: a user message is recorded once, after the first model call that answers it
    (the human messages at the end of the request, i.e. before any tool round of this turn),
    so the tool loop of a run never records it twice; an assistant reply is recorded when it
    has text (a message that only calls tools is skipped). Each recorded memory carries the
    message id in ``metadata.message_id`` and a dedup key derived from it, so a retried call
    is caught by the engine's dedup as well.
    """

    def __init__(
        self,
        memtrace: MemtraceTarget,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        max_tokens: int | None = 2000,
        scope: Literal["auto", "agent"] = "auto",
        since: str | None = "30d",
        context_format: str | None = None,
        heading: str = DEFAULT_HEADING,
        record_turns: bool = False,
        user_event_type: str = "user_message",
        assistant_event_type: str = "assistant_message",
        with_tools: bool | Iterable[str] = False,
        raise_errors: bool = False,
        api_key: str | None = None,
    ) -> None:
        super().__init__()
        if scope not in ("auto", "agent"):
            raise ValueError(f"scope must be 'auto' or 'agent', got {scope!r}")
        self._handle = as_handle(memtrace, api_key=api_key)
        self.agent_id = agent_id
        self.session_id = session_id
        self.max_tokens = max_tokens
        self.scope = scope
        self.since = since
        self.context_format = context_format
        self.heading = heading
        self.record_turns = record_turns
        self.user_event_type = user_event_type
        self.assistant_event_type = assistant_event_type
        self.raise_errors = raise_errors
        self.tools: Sequence[BaseTool] = []
        if with_tools is not False:
            from .tools import memtrace_tools

            self.tools = memtrace_tools(
                self._handle,
                agent_id=agent_id,
                session_id=session_id,
                include=None if with_tools is True else with_tools,
                context_max_tokens=max_tokens,
            )

    def close(self) -> None:
        """Close the memtrace handle if the middleware opened it from a URL (and so the
        tools' of ``with_tools``, which share it)."""
        self._handle.close()

    async def aclose(self) -> None:
        """:meth:`close` from a coroutine."""
        await self._handle.aclose()

    # -- the bodies (one for the sync and the async path) ---------------------------------

    def _scope(self, request: ModelRequest[Any]) -> Scope:
        return resolve_scope(request.runtime, agent_id=self.agent_id, session_id=self.session_id)

    def _context_program(self, scope: Scope) -> Program:
        options: dict[str, Any] = {}
        if self.max_tokens is not None:
            options["max_tokens"] = self.max_tokens
        if self.since is not None:
            options["since"] = self.since
        if self.context_format is not None:
            options["format"] = self.context_format
        found: SessionContext | AgentContext | None = yield from context_program(
            scope, options, session_first=self.scope == "auto"
        )
        if found is None or found.memory_count == 0:
            return None
        return found.context

    def _record_program(
        self, scope: Scope, request: ModelRequest[Any], result: _ModelResult
    ) -> Program:
        items = [
            self._item(scope, message, "user", self.user_event_type)
            for message in _new_user_messages(request.messages)
        ]
        items += [
            self._item(scope, message, "assistant", self.assistant_event_type)
            for message in _replies(result)
        ]
        items = [item for item in items if item is not None]
        if not items:
            return None
        outcome: BatchResult = yield Call("add_memories", (items,))
        return outcome

    def _item(
        self, scope: Scope, message: BaseMessage, role: str, event_type: str
    ) -> dict[str, Any] | None:
        text = message.text.strip()
        if not text:
            return None
        metadata: dict[str, Any] = {"source": "langchain", "role": role}
        item: dict[str, Any] = {
            "agent_id": scope.agent_id,
            "session_id": scope.session_id,
            "content": text,
            "memory_type": "episodic",
            "event_type": event_type,
            "metadata": metadata,
        }
        if message.id:
            metadata["message_id"] = message.id
            digest = hashlib.sha256(
                "\x00".join((scope.agent_id, scope.session_id or "", role, message.id)).encode()
            ).hexdigest()
            item["dedup_key"] = f"langchain-turn:{digest[:40]}"
        return item

    def _with_context(self, request: ModelRequest[Any], context: str | None) -> ModelRequest[Any]:
        if not context:
            return request
        addition = f"{self.heading}\n\n{context}" if self.heading else context
        if request.system_message is None:
            system = SystemMessage(content=addition)
        else:
            blocks: list[Any] = [
                *request.system_message.content_blocks,
                {"type": "text", "text": f"\n\n{addition}"},
            ]
            system = SystemMessage(content=cast("list[str | dict[str, Any]]", blocks))
        return request.override(system_message=system)

    def _failed(self, what: str, exc: MemtraceError) -> None:
        if self.raise_errors:
            raise exc
        logger.warning(
            "memtrace middleware could not %s: %s: %s", what, type(exc).__name__, exc.message
        )

    # -- the hooks --------------------------------------------------------------------------

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        """Add the memtrace context to the system message, call the model, then (with
        ``record_turns``) record the new user message(s) and the reply."""
        scope = self._scope(request)
        context: str | None = None
        try:
            context = drive(self._handle, self._context_program(scope))
        except MemtraceError as exc:
            self._failed("load the context", exc)
        result = handler(self._with_context(request, context))
        if self.record_turns:
            try:
                drive(self._handle, self._record_program(scope, request, result))
            except MemtraceError as exc:
                self._failed("record the turn", exc)
        return result

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        """:meth:`wrap_model_call` for ``ainvoke`` / ``astream`` (memtrace is awaited)."""
        scope = self._scope(request)
        context: str | None = None
        try:
            context = await drive_async(self._handle, self._context_program(scope))
        except MemtraceError as exc:
            self._failed("load the context", exc)
        result = await handler(self._with_context(request, context))
        if self.record_turns:
            try:
                await drive_async(self._handle, self._record_program(scope, request, result))
            except MemtraceError as exc:
                self._failed("record the turn", exc)
        return result


def _new_user_messages(messages: Sequence[AnyMessage]) -> list[HumanMessage]:
    """The human messages this model call is the first to answer: those at the end of the
    request (after the last AI or tool message). A later call of the same turn's tool loop
    ends with tool messages, so it finds none."""
    new: list[HumanMessage] = []
    for message in reversed(messages):
        if not isinstance(message, HumanMessage):
            break
        new.append(message)
    new.reverse()
    return new


def _replies(result: _ModelResult) -> list[AIMessage]:
    """The AI messages of a model call's result."""
    if isinstance(result, AIMessage):
        messages: list[BaseMessage] = [result]
    elif isinstance(result, ExtendedModelResponse):
        messages = list(result.model_response.result)
    else:
        messages = list(result.result)
    return [m for m in messages if isinstance(m, AIMessage)]
