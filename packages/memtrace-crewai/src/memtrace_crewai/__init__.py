"""memtrace for CrewAI 1.x: shared, durable, searchable crew memory with no embedder and no
LLM on the memory path (docs/integrations/crewai.md).

* :class:`MemtraceMemory` — a ``crewai.memory.Memory`` for ``Crew(memory=...)`` /
  ``Agent(memory=...)``: keyword-ranked recall, deterministic fact extraction, one memtrace
  session per crew run.
* :class:`MemtraceStorage` and :func:`register_memtrace` — a ``StorageBackend`` for CrewAI's
  stock ``Memory`` (``Memory(storage="memtrace")``), which keeps its embedder and LLM.
* :func:`memtrace_tools` — memtrace's memory tools as CrewAI ``BaseTool``s.

Over the embedded store (``sqlite:///…``) or a memtrace server (``http://…``), the same.
"""

from __future__ import annotations

from .extract import ExtractedFact, extract_facts, split_facts
from .memory import MemtraceMemory
from .storage import MemtraceStorage, register_memtrace
from .tools import TOOL_NAMES, MemtraceTool, memtrace_tools

__version__ = "0.1.0"

__all__ = [
    "TOOL_NAMES",
    "ExtractedFact",
    "MemtraceMemory",
    "MemtraceStorage",
    "MemtraceTool",
    "__version__",
    "extract_facts",
    "memtrace_tools",
    "register_memtrace",
    "split_facts",
]
