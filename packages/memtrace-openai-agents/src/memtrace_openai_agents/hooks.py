"""Run hooks that leave an audit trail in memtrace: tool calls and agent handoffs as memories.

::

    from agents import Runner
    from memtrace_openai_agents.hooks import MemtraceRunHooks

    hooks = MemtraceRunHooks(mt, agent_id="support-bot", record_tool_calls=True,
                             record_handoffs=True)
    await Runner.run(triage_agent, "refund order 42", hooks=hooks,
                     context={"session_id": "ticket-42"})

Each kind is off by default. With ``record_tool_calls=True`` every completed local tool call
(``on_tool_end``) becomes one episodic memory with ``event_type="tool_call"``: content
``Tool <name> (call <id>) by agent <sdk agent>: arguments <json> -> <result>`` (cut to
``max_chars``), and ``metadata`` ``{"source": "openai-agents", "tool", "call_id", "sdk_agent",
"arguments", "result", "duration_ms"}`` (arguments and result cut to ``max_chars`` too). With
``record_handoffs=True`` each handoff becomes ``event_type="handoff"``: ``Handoff from <A> to
<B>``, ``metadata`` ``{"source", "from_agent", "to_agent"}``. The memories belong to the run's
memtrace agent and session: the run context's ``agent_id`` / ``session_id`` (attribute or
mapping key) or the defaults given here — one memtrace agent for the whole multi-agent run, the
SDK agent's name in the text and metadata.

The hooks never break the run: a memtrace error (or a missing agent id) is logged as a warning
and the run goes on. Subclass and call ``super()`` to add hooks of your own.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from agents import RunContextWrapper, RunHooks

from memtrace_core.errors import DuplicateMemoryError

from ._context import Call, MemtraceTarget, Program, Scope, as_handle, drive_async, resolve_scope

__all__ = ["MemtraceRunHooks"]

logger = logging.getLogger(__name__)

_SOURCE = "openai-agents"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _name(agent: Any) -> str:
    return str(getattr(agent, "name", None) or type(agent).__name__)


class MemtraceRunHooks(RunHooks[Any]):
    """``RunHooks`` that record tool calls and handoffs in memtrace (see the module docstring).

    Args:
        memtrace: a handle from ``memtrace_core.connect``/``aconnect``, a ``MemtraceHandle``, a
            memtrace URL (with ``api_key`` for a server), or the original SDK's client.
        agent_id / session_id: defaults, overridden by the run context's ``agent_id`` /
            ``session_id``.
        record_tool_calls: record each completed tool call (off by default).
        record_handoffs: record each handoff (off by default).
        max_chars: the longest arguments / result text kept (in the content and in metadata).
        tags: tags for every memory the hooks write.
        api_key: the server key when ``memtrace`` is an ``http(s)://`` URL.
    """

    def __init__(
        self,
        memtrace: MemtraceTarget,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        record_tool_calls: bool = False,
        record_handoffs: bool = False,
        max_chars: int = 2000,
        tags: list[str] | None = None,
        api_key: str | None = None,
    ) -> None:
        super().__init__()
        self.handle = as_handle(memtrace, api_key=api_key)
        self.agent_id = agent_id
        self.session_id = session_id
        self.record_tool_calls = record_tool_calls
        self.record_handoffs = record_handoffs
        self.max_chars = max_chars
        self.tags = tags
        self._started: dict[str, float] = {}

    # -- SDK hooks ---------------------------------------------------------------------------

    async def on_tool_start(self, context: RunContextWrapper[Any], agent: Any, tool: Any) -> None:
        if self.record_tool_calls:
            self._started[self._call_key(context, tool)] = time.monotonic()

    async def on_tool_end(
        self, context: RunContextWrapper[Any], agent: Any, tool: Any, result: object
    ) -> None:
        if not self.record_tool_calls:
            return
        key = self._call_key(context, tool)
        started = self._started.pop(key, None)
        name = str(getattr(tool, "name", None) or type(tool).__name__)
        call_id = getattr(context, "tool_call_id", None)
        arguments = getattr(context, "tool_arguments", None)
        args_text = _cut(arguments if isinstance(arguments, str) else "", self.max_chars)
        result_text = _cut(result if isinstance(result, str) else _text(result), self.max_chars)
        who = _name(agent)
        call = f" (call {call_id})" if call_id else ""
        content = (
            f"Tool {name}{call} by agent {who}: arguments {args_text or '{}'} -> {result_text}"
        )
        metadata: dict[str, Any] = {
            "source": _SOURCE,
            "tool": name,
            "call_id": call_id,
            "sdk_agent": who,
            "arguments": args_text,
            "result": result_text,
        }
        if started is not None:
            metadata["duration_ms"] = round((time.monotonic() - started) * 1000, 3)
        await self._record(context, "tool_call", content, metadata)

    async def on_handoff(
        self, context: RunContextWrapper[Any], from_agent: Any, to_agent: Any
    ) -> None:
        if not self.record_handoffs:
            return
        source, target = _name(from_agent), _name(to_agent)
        await self._record(
            context,
            "handoff",
            f"Handoff from {source} to {target}",
            {"source": _SOURCE, "from_agent": source, "to_agent": target},
        )

    # -- writing -----------------------------------------------------------------------------

    @staticmethod
    def _call_key(context: RunContextWrapper[Any], tool: Any) -> str:
        call_id = getattr(context, "tool_call_id", None)
        return str(call_id) if call_id else f"{id(context)}:{getattr(tool, 'name', '')}"

    async def _record(
        self,
        context: RunContextWrapper[Any],
        event_type: str,
        content: str,
        metadata: dict[str, Any],
    ) -> None:
        try:
            scope = resolve_scope(context, agent_id=self.agent_id, session_id=self.session_id)
            await drive_async(self.handle, self._write(scope, event_type, content, metadata))
        except DuplicateMemoryError:
            logger.debug("memtrace hooks: %s already recorded", event_type)
        except Exception as exc:  # never break the run because of the audit trail
            logger.warning(
                "memtrace hooks: %s not recorded: %s: %s", event_type, type(exc).__name__, exc
            )

    def _write(
        self, scope: Scope, event_type: str, content: str, metadata: dict[str, Any]
    ) -> Program:
        yield Call(
            "remember",
            (scope.agent_id, content),
            {
                "session_id": scope.session_id,
                "memory_type": "episodic",
                "event_type": event_type,
                "tags": self.tags,
                "metadata": metadata,
            },
        )


def _text(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
