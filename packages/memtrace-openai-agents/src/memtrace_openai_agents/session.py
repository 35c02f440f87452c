"""``MemtraceSession``: the OpenAI Agents SDK's conversation history (``agents.memory.Session``)
kept in memtrace, so a conversation survives the process, is shared by every process and
server that reaches the same store, and is at the same time ordinary memtrace memory — in
recall, search, session context and export.

It implements the SDK's ``Session`` protocol structurally (``isinstance(s, agents.Session)``
holds; it does not subclass the SDK's internal ``SessionABC``) and opts into the SDK's
``wrapper`` protocol: every method takes a keyword ``wrapper: RunContextWrapper | None``, so
the runner passes the run's context and the agent / session of a call can come from it (see
"Scope" below).

The mapping (one SDK item = one memtrace memory)
===============================================

==========================  ==================================================================
SDK                         memtrace
==========================  ==================================================================
the item (a JSON dict)      the memory's ``payload``, exactly: stored and returned verbatim
                            (lossless — the runner rewinds with ``pop_item`` and matches items
                            by a fingerprint of their JSON), up to the engine's payload limit
                            (3 MiB by default); never deduplicated (``dedup=False``: two
                            identical items are two items)
a large item                an item over ``part_bytes`` (1 MiB) of JSON: its JSON text in parts
                            (memories of ``[*PARTS_NAMESPACE, <session_id>]`` tagged with the
                            item's part id, each under the engine's payload limit and a
                            server's request limit) and, in the session's order, a mark
                            ``{"memtrace_parts": {"id", "count"}}``; reads rebuild the item
                            exactly, a pop takes the mark atomically and deletes its parts —
                            no item is refused for its size
readable text               the memory's ``content``, derived for recall, search and context:
                            a message's text (its text parts joined), a function call's
                            ``name(arguments)``, a tool output's text, a reasoning summary, a
                            web / file search query, an MCP call; else a short label such as
                            ``[computer_call]``. Never empty; cut to the engine's 64 KiB
                            content limit (the payload keeps everything)
item type / role            ``event_type``: ``user_message``, ``assistant_message``,
                            ``system_message``, ``developer_message``, ``function_call``,
                            ``function_call_output``, ``reasoning``, ``web_search_call`` …
                            (any item ``type`` that is a valid event type name is used as is;
                            otherwise ``session_item``); ``memory_type`` is ``session``
the session (scope)         the namespace ``["openai-agents", "session", <session_id>]``: every
                            read, pop and clear filters on exactly that namespace, so they see
                            only this session's items (never a memory a memtrace tool wrote in
                            the same memtrace session, never another session's item). Any SDK
                            session id works (up to 256 characters, no NUL)
memtrace session            the memory's ``session_id`` is the SDK session id when it is a
                            valid memtrace id (letters, digits, ``_``, ``-``; starts with a
                            letter; ≤ 128) — so ``get_session_context`` and the memtrace tools
                            of that session see the conversation; otherwise none
agent                       the memory's ``agent_id``: the run context's ``agent_id``, else
                            the session's ``agent_id=``, else ``"openai-agents"``. Reads do
                            not filter on the agent: a hand-off to another agent continues the
                            same history
order                       the engine's order (event time, then write order); the items of
                            one ``add_items`` call share one event time
==========================  ==================================================================

Operations
==========

* ``get_items(limit)``: the latest ``limit`` items in chronological order (the newest page,
  reversed); ``limit=None`` uses ``session_settings.limit`` (the SDK's own resolution), else
  every item; ``limit=0`` is ``[]``; a negative limit means every item (as ``SQLiteSession``).
* ``add_items(items)``: every item is checked first (JSON-serialisable, valid Unicode), then
  written with **one** atomic ``add_memories`` call — concurrent ``add_items`` calls never
  interleave and a refused batch (e.g. an item over the payload limit) writes nothing. A call
  beyond one request (more than 1000 items — the engine's batch limit — or more than
  ``max_request_bytes`` of JSON, 3.5 MiB by default, under a server's 4 MiB body limit) is
  written in several batches that keep the first batch's event time, so they still sort as
  one block; if a later batch is refused, the earlier ones are deleted again before the error
  is raised.
* ``pop_item()``: the engine's atomic ``pop_memory`` on the session's namespace — two
  concurrent pops never return the same item. Returns the payload; a memory of the namespace
  without a payload (not written by a session) is dropped and the next one returned.
* ``clear_session()``: ``delete_memories`` on the session's namespace (nothing else).

Scope from the run context (the ``wrapper`` opt-in)
==================================================

With ``from_context=True`` (the default), a run context (``Runner.run(...,
context=Ctx(...))``) that has ``agent_id`` / ``session_id`` (attributes, or keys of a mapping)
overrides the session's own for that call: one ``MemtraceSession`` then serves many
conversations. A missing, ``None`` or empty value keeps the session's own. The org is the
handle's (an API key's org over HTTP), never the context's.

Constructors
============

* ``MemtraceSession(session_id, memtrace, *, agent_id=None, session_settings=None, ...)`` —
  the argument order of the SDK's ``SQLiteSession(session_id, db_path)``; ``memtrace`` is a
  handle from ``memtrace_core.connect`` / ``aconnect``, a ``MemtraceHandle``, a URL, or the
  original SDK's ``memtrace.AsyncMemtrace`` / ``Memtrace`` client (its URL and key open
  memtrace's own HTTP client), so ``create(AsyncMemtrace(url, key), agent_id=...)`` ports
  unchanged.
* ``await MemtraceSession.create(client, agent_id=..., ...)`` — the original integration's
  factory: opens a memtrace session for the agent (``create_session``; the agent need not be
  registered) and uses its id, unless ``session_id=`` resumes one. With ``inject_context``
  (default, as the original) and prior memories of the agent, the first item the session
  returns is the original's ``"[System: Prior memory context for this agent]"`` user message
  with the agent's memtrace context — held by this object only, not stored (so it is not
  fed back into later contexts). ``persist_user_messages`` / ``persist_assistant_messages``
  are accepted for compatibility: every item is stored (it is the conversation history).
* ``MemtraceSession.from_url(session_id, url, api_key=None, ...)`` — opens the URL with
  ``memtrace_core.connect`` and closes it in :meth:`close`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from agents.memory.session_settings import (
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)

from memtrace_core.api import AsyncMemoryAPI
from memtrace_core.bridge import MemtraceHandle
from memtrace_core.errors import MemtraceError, NotFoundError
from memtrace_core.models import ID_PATTERN, TYPE_PATTERN, BatchResult, Memory, SearchResult

from ._context import MemtraceTarget, as_handle, context_ids

if TYPE_CHECKING:
    from agents.items import TResponseInputItem
    from agents.run_context import RunContextWrapper

__all__ = ["DEFAULT_AGENT_ID", "NAMESPACE", "MemtraceSession"]

#: The namespace prefix of session items: ``[*NAMESPACE, <session_id>]``.
NAMESPACE: tuple[str, ...] = ("openai-agents", "session")
_logger = logging.getLogger(__name__)

#: The namespace prefix of the parts of a large item: ``[*PARTS_NAMESPACE, <session_id>]``.
PARTS_NAMESPACE: tuple[str, ...] = ("openai-agents", "session-parts")
#: An item whose JSON is larger than this (UTF-8 bytes) is stored in parts of at most this
#: size each (as JSON text), below the engine's payload limit and a server's request limit.
PART_BYTES = 1024 * 1024
#: The payload key of the memory that stands for a large item in the session's order.
PART_MARK = "memtrace_parts"
#: The event type of the parts of a large item.
PART_EVENT_TYPE = "session_item_part"
#: The agent of session items when neither the context nor the session names one.
DEFAULT_AGENT_ID = "openai-agents"
#: The engine's batch limit (``limits.max_batch``).
MAX_BATCH = 1000
#: The engine's content limit (``limits.max_content_bytes``), UTF-8 bytes.
MAX_CONTENT_BYTES = 64 * 1024
#: Estimated JSON bytes of one add_memories request before it is split (a server refuses a
#: body over ``max_body_bytes``, 4 MiB by default).
MAX_REQUEST_BYTES = 3 * 1024 * 1024 + 512 * 1024
#: Rows per read page (the engine caps ``limit`` at 1000).
_PAGE = 1000
#: Per-memory overhead beyond payload and content in a request (fields, namespace, ids).
_OVERHEAD = 1024
_CONTEXT_PREFIX = "[System: Prior memory context for this agent]\n\n"


class MemtraceSession:
    """The SDK's ``Session`` over memtrace (see the module docstring for the mapping).

    Args:
        session_id: the SDK session id (any string of 1..256 characters without NUL).
        memtrace: a handle from ``memtrace_core.connect`` / ``aconnect``, a ``MemtraceHandle``,
            a memtrace URL (opened with ``connect`` and closed by :meth:`close`) or the
            original SDK's client.
        agent_id: the agent the items are recorded for (default: the run context's, else
            ``"openai-agents"``).
        session_settings: the SDK's ``SessionSettings`` (or a dict), e.g. ``{"limit": 20}``.
        api_key: the API key when ``memtrace`` is an ``http(s)://`` URL.
        from_context: take ``agent_id`` / ``session_id`` from the run context when it has them.
        max_request_bytes: split an ``add_items`` call whose JSON is larger than this.
    """

    session_id: str
    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        memtrace: MemtraceTarget,
        *,
        agent_id: str | None = None,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
        api_key: str | None = None,
        from_context: bool = True,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        part_bytes: int = PART_BYTES,
    ) -> None:
        _check_session_id(session_id)
        if agent_id is not None and not (isinstance(agent_id, str) and agent_id):
            raise ValueError("agent_id must be a non-empty string or None")
        self.session_id = session_id
        self.agent_id = agent_id
        self.session_settings = _settings(session_settings)
        self.from_context = from_context
        self.max_request_bytes = max_request_bytes
        if part_bytes < 1024:
            raise ValueError("part_bytes must be at least 1024")
        self.part_bytes = part_bytes
        self._handle = as_handle(memtrace, api_key=api_key)
        self._preamble: list[TResponseInputItem] = []

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def from_url(
        cls,
        session_id: str,
        url: str,
        api_key: str | None = None,
        **options: Any,
    ) -> MemtraceSession:
        """A session over the memtrace at ``url`` (``sqlite:///…`` or ``http(s)://…``),
        opened with ``memtrace_core.connect`` and closed by :meth:`close`. ``options`` are
        the constructor's keywords (``agent_id``, ``session_settings`` …)."""
        if not isinstance(url, str):
            raise TypeError(f"url must be a memtrace URL string, got {type(url).__name__}")
        return cls(session_id, url, api_key=api_key, **options)

    @classmethod
    async def create(
        cls,
        client: MemtraceTarget,
        agent_id: str,
        *,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        inject_context: bool = True,
        context_since: str | None = None,
        context_max_tokens: int | None = None,
        persist_user_messages: bool = True,
        persist_assistant_messages: bool = False,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
        api_key: str | None = None,
        from_context: bool = True,
    ) -> MemtraceSession:
        """The original integration's factory: a session for ``agent_id`` (registered or
        not). Without ``session_id`` it opens a memtrace session (``create_session``, with
        ``metadata``) and uses its id; with one it resumes that conversation. See the module
        docstring for ``inject_context``; the ``persist_*`` flags are accepted for
        compatibility (every item is stored)."""
        del persist_user_messages, persist_assistant_messages  # every item is stored
        if not (isinstance(agent_id, str) and agent_id):
            raise ValueError("agent_id must be a non-empty string")
        handle = as_handle(client, api_key=api_key)
        try:
            if session_id is None:
                created = await _call(
                    handle, "create_session", agent_id=agent_id, metadata=metadata
                )
                session_id = created.id
            session = cls(
                session_id,
                handle,
                agent_id=agent_id,
                session_settings=session_settings,
                from_context=from_context,
            )
            if inject_context and not await session._stored(session_id, limit=1):
                options: dict[str, Any] = {}
                if context_since is not None:
                    options["since"] = context_since
                if context_max_tokens is not None:
                    options["max_tokens"] = context_max_tokens
                try:
                    context = await _call(handle, "get_agent_context", agent_id, **options)
                except NotFoundError:
                    context = None
                if context is not None and context.memory_count > 0:
                    session._preamble = [
                        cast(
                            "TResponseInputItem",
                            {"role": "user", "content": _CONTEXT_PREFIX + context.context},
                        )
                    ]
            return session
        except BaseException:
            await handle.aclose()  # closes only a connection opened here from a URL
            raise

    def close(self) -> None:
        """Close the memtrace connection if this session opened it (from a URL)."""
        self._handle.close()

    async def aclose(self) -> None:
        """:meth:`close` from a coroutine."""
        await self._handle.aclose()

    async def __aenter__(self) -> MemtraceSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the Session protocol ---------------------------------------------------------------

    async def get_items(
        self,
        limit: int | None = None,
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> list[TResponseInputItem]:
        """The latest ``limit`` items in chronological order (all of them when ``limit`` and
        ``session_settings.limit`` are None; ``[]`` for 0)."""
        resolved = resolve_session_limit(limit, self.session_settings)
        if resolved is not None and resolved < 0:
            resolved = None
        if resolved == 0:
            return []
        sid = self._scope(wrapper)[1]
        items = await self._stored(sid, limit=resolved)
        if self._preamble and sid == self.session_id:
            items = [*self._preamble, *items]
            if resolved is not None:
                items = items[-resolved:]
        return items

    async def add_items(
        self,
        items: list[TResponseInputItem],
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> None:
        """Append ``items`` in order, in one atomic write (see the module docstring)."""
        if not items:
            return
        agent, sid = self._scope(wrapper)
        memories: list[dict[str, Any]] = []
        sizes: list[int] = []
        namespace = [*NAMESPACE, sid]
        memtrace_sid = sid if ID_PATTERN.fullmatch(sid) else None
        for index, item in enumerate(items):
            payload, size = _payload(item, index)
            content = item_content(payload)
            event_type = item_event_type(payload)  # the item's, also for a large one
            if size > self.part_bytes:
                # a large item: its JSON in parts (another namespace, tagged with the item's
                # id), then the memory that stands for it in the session's order
                parts, payload = _parts(payload, self.part_bytes)
                for number, part in enumerate(parts, 1):
                    memories.append(
                        {
                            "agent_id": agent,
                            "memory_type": "session",
                            "event_type": PART_EVENT_TYPE,
                            "content": f"[part {number}/{len(parts)} of a large session item]",
                            "payload": part,
                            "dedup": False,
                            "namespace": [*PARTS_NAMESPACE, sid],
                            "tags": [payload[PART_MARK]["id"]],
                        }
                    )
                    sizes.append(len(json.dumps(part, ensure_ascii=False).encode()) + _OVERHEAD)
                size = 0
            memory: dict[str, Any] = {
                "agent_id": agent,
                "memory_type": "session",
                "event_type": event_type,
                "content": content,
                "payload": payload,
                "dedup": False,
                "namespace": namespace,
            }
            if memtrace_sid is not None:
                memory["session_id"] = memtrace_sid
            memories.append(memory)
            sizes.append(size + len(content.encode()) + _OVERHEAD)
        batches = _batches(sizes, self.max_request_bytes)
        if len(batches) == 1:
            await _call(self._handle, "add_memories", memories)
            return
        await self._add_in_batches(memories, batches)

    async def pop_item(
        self, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> TResponseInputItem | None:
        """Remove and return the newest item (``None`` when the session is empty)."""
        sid = self._scope(wrapper)[1]
        namespace = [*NAMESPACE, sid]
        while True:
            memory: Memory | None = await _call(self._handle, "pop_memory", namespace=namespace)
            if memory is None:
                break
            if _part_id(memory.payload) is not None:
                item = await self._assemble(sid, memory.payload, delete=True)
                if item is not None:
                    return item
                continue
            if memory.payload is not None:
                return cast("TResponseInputItem", memory.payload)
        if self._preamble and sid == self.session_id:
            return self._preamble.pop()
        return None

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        """Delete every item of this session (and nothing else)."""
        sid = self._scope(wrapper)[1]
        namespace = [*NAMESPACE, sid]
        await _call(self._handle, "delete_memories", namespace=namespace)
        await _call(self._handle, "delete_memories", namespace=[*PARTS_NAMESPACE, sid])
        if sid == self.session_id:
            self._preamble = []

    # -- internals --------------------------------------------------------------------------

    def _scope(self, wrapper: RunContextWrapper[Any] | None) -> tuple[str, str]:
        """(agent_id, session_id) of a call: the run context's when set, else the session's."""
        ids = context_ids(wrapper.context) if wrapper is not None and self.from_context else {}
        sid = ids.get("session_id") or self.session_id
        if sid != self.session_id:
            _check_session_id(sid)
        return ids.get("agent_id") or self.agent_id or DEFAULT_AGENT_ID, sid

    async def _stored(self, sid: str, *, limit: int | None) -> list[TResponseInputItem]:
        """The stored items of session ``sid``: the latest ``limit`` (all when None), oldest
        first. Pages of 1000 (the engine's cap), newest first, then reversed."""
        namespace = [*NAMESPACE, sid]
        newest_first: list[Memory] = []
        offset = 0
        while limit is None or len(newest_first) < limit:
            want = _PAGE if limit is None else min(_PAGE, limit - len(newest_first))
            page: SearchResult = await _call(
                self._handle,
                "search_memories",
                namespace=namespace,
                order="desc",
                limit=want,
                offset=offset,
            )
            newest_first.extend(page.results)
            offset += len(page.results)
            if not page.has_more or not page.results:
                break
        items: list[TResponseInputItem] = []
        for memory in reversed(newest_first):
            if _part_id(memory.payload) is not None:
                item = await self._assemble(sid, memory.payload, delete=False)
                if item is not None:
                    items.append(item)
            elif memory.payload is not None:
                items.append(cast("TResponseInputItem", memory.payload))
        return items

    async def _assemble(self, sid: str, mark: Any, *, delete: bool) -> TResponseInputItem | None:
        """The large item a part mark stands for, from its parts (in write order); with
        ``delete``, the parts are deleted too (after a pop of the mark). None when parts are
        missing (logged: the item cannot be rebuilt)."""
        part_id, count = mark[PART_MARK]["id"], mark[PART_MARK]["count"]
        namespace = [*PARTS_NAMESPACE, sid]
        texts: list[str] = []
        offset = 0
        while True:
            page: SearchResult = await _call(
                self._handle,
                "search_memories",
                namespace=namespace,
                tags=[part_id],
                order="asc",
                limit=_PAGE,
                offset=offset,
            )
            texts.extend(m.payload for m in page.results if isinstance(m.payload, str))
            offset += len(page.results)
            if not page.has_more or not page.results:
                break
        if delete:
            await _call(self._handle, "delete_memories", namespace=namespace, tags=[part_id])
        if len(texts) != count:
            _logger.warning(
                "session %r: a large item has %d of its %d parts; it is skipped",
                sid,
                len(texts),
                count,
            )
            return None
        return cast("TResponseInputItem", json.loads("".join(texts)))

    async def _add_in_batches(
        self, memories: list[dict[str, Any]], batches: list[tuple[int, int]]
    ) -> None:
        """Write a call too big for one request: the first batch's event time for all, so the
        call's items stay one block in the session's order; undo on a refused batch."""
        written: list[str] = []
        event_time: str | None = None
        try:
            for number, (start, end) in enumerate(batches):
                chunk = memories[start:end]
                if number > 0:
                    chunk = [{**m, "time": event_time} for m in chunk]
                result: BatchResult = await _call(self._handle, "add_memories", chunk)
                written.extend(m.id for m in result.memories)
                if number == 0:
                    event_time = result.memories[0].time.isoformat()
        except BaseException:
            for memory_id in written:
                try:
                    await _call(self._handle, "delete_memory", memory_id)
                except MemtraceError:
                    pass
            raise


async def _call(handle: MemtraceHandle, method: str, /, *args: Any, **kwargs: Any) -> Any:
    """``await api.<method>(*args, **kwargs)`` on the handle's async method set."""

    def invoke(api: AsyncMemoryAPI) -> Coroutine[Any, Any, Any]:
        return cast("Coroutine[Any, Any, Any]", getattr(api, method)(*args, **kwargs))

    return await handle.run(invoke)


# -- item mapping -----------------------------------------------------------------------------


def item_event_type(item: Mapping[str, Any]) -> str:
    """The memtrace ``event_type`` of an SDK item (see the module docstring)."""
    kind = item.get("type")
    role = item.get("role")
    if (kind is None or kind == "message") and isinstance(role, str):
        name = f"{role}_message"
        return name if TYPE_PATTERN.fullmatch(name) else "message"
    if isinstance(kind, str) and TYPE_PATTERN.fullmatch(kind):
        return kind
    return "session_item"


def item_content(item: Mapping[str, Any]) -> str:
    """A readable text of an SDK item for recall, search and context (never empty; at most
    the engine's 64 KiB; see the module docstring)."""
    kind = item.get("type")
    label = f"[{kind}]" if isinstance(kind, str) and kind else "[item]"
    text = _text_of(item, kind)
    text = _clean(text) if text else ""
    if not text.strip():
        text = label
    return _truncate(text)


def _text_of(item: Mapping[str, Any], kind: Any) -> str:
    if kind is None or kind == "message":
        return _parts_text(item.get("content"))
    if kind in ("function_call", "custom_tool_call"):
        args = item.get("arguments", item.get("input", ""))
        return f"{item.get('name', '')}({_as_text(args)})"
    if kind == "mcp_call":
        call = f"{item.get('server_label', '')}.{item.get('name', '')}({_as_text(item.get('arguments', ''))})"
        output = item.get("output") or item.get("error")
        return f"{call} -> {_as_text(output)}" if output else call
    if isinstance(kind, str) and kind.endswith("_output"):
        return _parts_text(item.get("output"))
    if kind == "reasoning":
        return _parts_text(item.get("summary")) or _parts_text(item.get("content"))
    if kind == "web_search_call":
        action = item.get("action")
        if isinstance(action, Mapping):
            query = action.get("query") or action.get("url") or action.get("pattern")
            if query:
                return f"web search: {_as_text(query)}"
        return ""
    if kind == "file_search_call":
        queries = item.get("queries")
        if isinstance(queries, list) and queries:
            return "file search: " + "; ".join(_as_text(q) for q in queries)
        return ""
    if kind == "item_reference":
        return f"[item_reference {item.get('id', '')}]"
    if "content" in item:
        return _parts_text(item.get("content"))
    return ""


def _parts_text(value: Any) -> str:
    """The text of a message content / tool output: a string, or a list of parts (text parts
    joined; an image or a file as a short marker)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts: list[str] = []
        for part in value:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text") or part.get("refusal")
                if isinstance(text, str):
                    texts.append(text)
                elif part.get("type") in ("input_image", "image"):
                    texts.append("[image]")
                elif part.get("type") in ("input_file", "file"):
                    texts.append(f"[file {part.get('filename') or ''}]".replace(" ]", "]"))
        return "\n".join(t for t in texts if t)
    if isinstance(value, Mapping):
        text = value.get("text")
        return text if isinstance(text, str) else _as_text(value)
    return _as_text(value)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return str(value)


def _clean(text: str) -> str:
    """Text the engine accepts as content: no NUL, valid Unicode."""
    text = text.replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


def _truncate(text: str) -> str:
    data = text.encode("utf-8")
    if len(data) <= MAX_CONTENT_BYTES:
        return text
    marker = f"\n… [truncated: {len(text)} characters in all]"
    room = MAX_CONTENT_BYTES - len(marker.encode("utf-8"))
    return data[:room].decode("utf-8", "ignore") + marker


def _payload(item: Any, index: int) -> tuple[Any, int]:
    """``item`` as the JSON it is stored as (a detached copy; tuples become lists, as with
    ``SQLiteSession``) and its size in bytes. A clear error for what JSON cannot carry, before
    anything is written."""
    if not isinstance(item, Mapping):
        raise TypeError(
            f"session item {index} is a {type(item).__name__}, not a JSON object (a dict): "
            "nothing was written"
        )
    try:
        text = json.dumps(item, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"session item {index} is not JSON-serialisable ({exc}): nothing was written"
        ) from exc
    return json.loads(text), size


def _parts(payload: Any, limit: int) -> tuple[list[str], dict[str, Any]]:
    """A large item's JSON text in parts of at most ``limit`` bytes each as stored (a JSON
    string: escapes counted), and the mark that stands for it: ``{PART_MARK: {"id", "count"}}``."""
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    parts: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + limit)
        while (
            end - start > 1
            and len(json.dumps(text[start:end], ensure_ascii=False).encode()) > limit
        ):
            end = start + (end - start) // 2
        parts.append(text[start:end])
        start = end
    return parts, {PART_MARK: {"id": uuid.uuid4().hex, "count": len(parts)}}


def _part_id(payload: Any) -> str | None:
    """The part id of a large item's mark (None for an ordinary item)."""
    if isinstance(payload, Mapping) and len(payload) == 1 and PART_MARK in payload:
        mark = payload[PART_MARK]
        if isinstance(mark, Mapping) and isinstance(mark.get("id"), str):
            return str(mark["id"])
    return None


def _batches(sizes: Sequence[int], max_bytes: int) -> list[tuple[int, int]]:
    """[start, end) ranges of at most MAX_BATCH memories and ``max_bytes`` (a single larger
    memory is a batch of its own: the engine's limit decides)."""
    out: list[tuple[int, int]] = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and (index - start >= MAX_BATCH or total + size > max_bytes):
            out.append((start, index))
            start, total = index, 0
        total += size
    out.append((start, len(sizes)))
    return out


def _settings(value: SessionSettings | Mapping[str, Any] | None) -> SessionSettings | None:
    """The SDK's own coercion (a dict's unknown keys are a TypeError, as in SQLiteSession)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = dict(value)
    return coerce_session_settings(value)


def _check_session_id(session_id: Any) -> None:
    if not isinstance(session_id, str) or not session_id:
        raise ValueError("session_id must be a non-empty string")
    if "\x00" in session_id or len(session_id) > 256:
        raise ValueError("session_id must be at most 256 characters, without NUL")
