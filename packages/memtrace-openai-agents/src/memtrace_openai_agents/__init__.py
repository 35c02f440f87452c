"""memtrace for the OpenAI Agents SDK: conversation history and long-term memory.

* :class:`MemtraceSession` — the SDK's ``Session`` (``Runner.run(agent, input,
  session=MemtraceSession("chat-1", mt))``): lossless, shared by every process that reaches the
  same store, and ordinary memtrace memory (recall, search, session context, export);
* :func:`create_memtrace_tools` — ``memtrace_remember``, ``memtrace_recall``,
  ``memtrace_search``, ``memtrace_decide``, ``memtrace_session_context`` and
  ``memtrace_forget`` as strict ``function_tool``s;
* :func:`memtrace_instructions` — ``Agent(instructions=...)`` that appends what the agent
  remembers (within a token budget) to its instructions;
* :class:`MemtraceRunHooks` — optionally records tool calls and handoffs as memories.

Every piece takes a handle from :func:`memtrace_core.connect` (embedded store or memtrace
server), a memtrace URL, or the original ``memtrace-sdk`` client (so code written for
``openai-agents-memtrace`` ports by changing its import). memtrace makes no LLM call.
"""

from __future__ import annotations

from .context import DEFAULT_HEADING, MemtraceInstructions, memtrace_instructions
from .hooks import MemtraceRunHooks
from .session import MemtraceSession
from .tools import TOOL_NAMES, create_memtrace_tools, memory_line

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_HEADING",
    "TOOL_NAMES",
    "MemtraceInstructions",
    "MemtraceRunHooks",
    "MemtraceSession",
    "__version__",
    "create_memtrace_tools",
    "memory_line",
    "memtrace_instructions",
]
