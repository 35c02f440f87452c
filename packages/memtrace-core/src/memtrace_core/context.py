"""LLM-ready context: render a session's (or an agent's) memories for a prompt.

Formats are pluggable (``register_context_formats`` hook). Built in:

* ``markdown`` — the original's format, byte for byte for its cases::

      ## Session Context (sess_a)

      ### Recent Actions (1)
      - [2026-02-07T20:15:00.5Z] page_crawled: Crawled …

      ### Decisions Made (1)
      - [2026-02-07T20:14:00Z] decision: Skip pagination

  Lines are newest first inside buckets emitted in the order Recent Actions, Decisions Made,
  Errors, Other; a blank line follows every bucket but Other. Documented fixes: an event of type
  ``error`` goes under Errors whatever its memory type (the original put episodic errors under
  Recent Actions); the 80-byte content hint is cut on a character boundary, never inside a UTF-8
  sequence.
* ``xml`` — ``<memory>`` elements with attributes, full content, XML-escaped.
* ``jsonl`` — one JSON object per memory, full content.

Token budget: tokens are estimated as ⌈characters / 4⌉ of the rendered text (a common rule of
thumb for English with GPT-style tokenizers). With ``max_tokens`` the newest memories are kept
and older ones dropped until the rendered context fits (the header alone always fits).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol, runtime_checkable
from xml.sax.saxutils import escape, quoteattr

from .models import Memory
from .timeutil import format_dt

HINT_BYTES = 80


def estimate_tokens(text: str) -> int:
    """Estimated token count: ⌈len(text) / 4⌉."""
    return (len(text) + 3) // 4


def truncate_utf8(text: str, max_bytes: int = HINT_BYTES, ellipsis: str = "...") -> str:
    """``text`` if it is at most ``max_bytes`` UTF-8 bytes, else its longest prefix of at most
    ``max_bytes`` bytes that ends on a character boundary, followed by ``ellipsis``."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore") + ellipsis


@runtime_checkable
class ContextFormat(Protocol):
    """A context format. ``render`` gets the memories newest first and returns the text.
    ``scope`` is ``"session"`` or ``"agent"`` and ``scope_id`` the session or agent id."""

    name: str

    def render(self, scope: str, scope_id: str, memories: Sequence[Memory]) -> str: ...


_BUCKETS = ("Recent Actions", "Decisions Made", "Errors", "Other")


def _bucket(memory: Memory) -> int:
    if memory.event_type == "error":
        return 2
    if memory.memory_type == "episodic":
        return 0
    if memory.memory_type == "decision":
        return 1
    return 3


class MarkdownFormat:
    """The original's markdown (see the module docstring)."""

    name = "markdown"

    def render(self, scope: str, scope_id: str, memories: Sequence[Memory]) -> str:
        title = "Session Context" if scope == "session" else "Agent Context"
        buckets: list[list[str]] = [[], [], [], []]
        for memory in memories:
            line = f"- [{format_dt(memory.time)}] {memory.event_type}: {truncate_utf8(memory.content)}\n"
            buckets[_bucket(memory)].append(line)
        parts = [f"## {title} ({scope_id})\n\n"]
        for index, lines in enumerate(buckets):
            if not lines:
                continue
            parts.append(f"### {_BUCKETS[index]} ({len(lines)})\n")
            parts.extend(lines)
            if index != 3:
                parts.append("\n")
        return "".join(parts)


class XmlFormat:
    """``<session_context id="…"><memory time=… type=… event=…>content</memory>…``."""

    name = "xml"

    def render(self, scope: str, scope_id: str, memories: Sequence[Memory]) -> str:
        tag = f"{scope}_context"
        parts = [f'<{tag} id={quoteattr(scope_id)} count="{len(memories)}">\n']
        for m in memories:
            attrs = (
                f"time={quoteattr(format_dt(m.time))} type={quoteattr(m.memory_type)} "
                f"event={quoteattr(m.event_type)} agent={quoteattr(m.agent_id)}"
            )
            if m.importance is not None:
                attrs += f' importance="{m.importance:g}"'
            parts.append(f"<memory {attrs}>{escape(m.content)}</memory>\n")
        parts.append(f"</{tag}>\n")
        return "".join(parts)


class JsonLinesFormat:
    """One compact JSON object per memory (time, type, event, agent, content, importance)."""

    name = "jsonl"

    def render(self, scope: str, scope_id: str, memories: Sequence[Memory]) -> str:
        lines = []
        for m in memories:
            item: dict[str, str | float] = {
                "time": format_dt(m.time),
                "memory_type": m.memory_type,
                "event_type": m.event_type,
                "agent_id": m.agent_id,
                "content": m.content,
            }
            if m.importance is not None:
                item["importance"] = m.importance
            lines.append(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
        return "".join(lines)


def render_within(
    fmt: ContextFormat,
    scope: str,
    scope_id: str,
    memories: Sequence[Memory],
    max_tokens: int | None,
) -> tuple[str, int]:
    """Render the newest memories that fit in ``max_tokens`` (all of them when None).

    Returns (text, number of memories included). ``memories`` must be newest first. The search
    is a binary search over how many of the newest memories to keep, so it is exact for any
    format whose size grows with the number of memories."""
    text = fmt.render(scope, scope_id, memories)
    if max_tokens is None or estimate_tokens(text) <= max_tokens:
        return text, len(memories)
    lo, hi = 0, len(memories) - 1  # the largest n with a fitting render is in [lo, hi]
    best = fmt.render(scope, scope_id, [])
    while lo < hi:
        mid = (lo + hi + 1) // 2
        candidate = fmt.render(scope, scope_id, memories[:mid])
        if estimate_tokens(candidate) <= max_tokens:
            lo, best = mid, candidate
        else:
            hi = mid - 1
    return best, lo
