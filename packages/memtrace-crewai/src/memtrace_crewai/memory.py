"""``MemtraceMemory``: CrewAI's ``Memory`` on memtrace — no embedder, no LLM, no LanceDB.

::

    from crewai import Agent, Crew, Task
    from memtrace_crewai import MemtraceMemory

    memory = MemtraceMemory("sqlite:///crew-memory.db")
    crew = Crew(agents=[...], tasks=[...], memory=memory)
    crew.kickoff()
    print(memory.session_context())          # the crew's run as markdown

A subclass of ``crewai.memory.Memory`` (so ``Crew(memory=...)`` and ``Agent(memory=...)`` accept
it, with CrewAI's automatic "Search memory" / "Save to memory" tools), whose every method on
CrewAI's memory path is memtrace's:

* ``remember`` / ``remember_many`` write memories as given: scope, categories, importance,
  metadata, source and ``private`` map onto namespace, tags, importance and metadata
  (:mod:`memtrace_crewai._mapping`); nothing is inferred by an LLM. Each record's id is its
  memtrace key (a new UUID). A repeated fact (same scope, agent, source, privacy and content,
  within the engine's dedup window) is the engine's duplicate: the stored record is returned,
  nothing new is written.
  ``remember_many`` runs in CrewAI's background save thread like the stock one; ``recall``
  and ``drain_writes`` wait for it.
* ``recall`` is the engine's ranked keyword search over the scope (the score is the engine's:
  about 1 for the best match of its pool, not comparable across searches), with CrewAI's
  category (any-of) and privacy rules as filters. ``depth`` is accepted and ignored: there is one depth, and no LLM.
* ``extract_memories`` splits a task's result into facts, deterministically
  (:mod:`memtrace_crewai.extract`), each stored with its task and agent as metadata.
* ``forget``, ``update``, ``reset``, ``list_records``, ``list_scopes``, ``info`` and
  ``list_categories`` are memtrace calls (never a scan); reads wait for pending saves.
  ``update`` writes a new version that supersedes the record (history stays readable with
  ``as_of``) under the same id; ``forget`` / ``reset`` delete records with all their versions.
* every blocking method has an ``a…`` twin that awaits memtrace without blocking the loop.

All memories of one ``MemtraceMemory`` belong to one memtrace session (``session_id``: given,
or generated), so ``session_context()`` after ``kickoff()`` is the crew's history as markdown.
Memories are written as the CrewAI agent that produced them (its role made an id,
``"Senior Researcher"`` -> ``senior-researcher``), else as ``agent_id``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from crewai.events.event_bus import crewai_event_bus
from crewai.events.types.memory_events import (
    MemoryQueryCompletedEvent,
    MemoryQueryFailedEvent,
    MemoryQueryStartedEvent,
    MemorySaveCompletedEvent,
    MemorySaveFailedEvent,
    MemorySaveStartedEvent,
)
from crewai.llms.base_llm import BaseLLM
from crewai.memory.types import MemoryMatch, MemoryRecord, ScopeInfo
from crewai.memory.unified_memory import Memory
from crewai.memory.utils import join_scope_paths
from pydantic import Field, PlainValidator, PrivateAttr

from memtrace_core.errors import DuplicateMemoryError, NotFoundError
from memtrace_core.integration import Call, MemtraceTarget, Program, drive, drive_async
from memtrace_core.models import Memory as MemtraceRecord
from memtrace_core.models import SessionContext
from memtrace_core.validation import Limits, validate_memory

from ._mapping import Layout, agent_id_for, privacy_filter
from .extract import extract_facts
from .storage import (
    MemtraceStorage,
    current_memory,
    delete_program,
    list_program,
    scope_info_program,
    scopes_program,
    summary_program,
    update_program,
)

__all__ = ["MemtraceMemory"]

logger = logging.getLogger(__name__)

#: The longest keyword query the engine takes; a longer one (a long task description) is cut
#: at the last word boundary before it.
MAX_QUERY_CHARS = 2000
_SOURCE_TYPE = "memtrace"

#: The ``llm`` of a MemtraceMemory: no model of that name exists, so a stock ``Memory`` rebuilt
#: from its fields cannot call one (CrewAI refuses the name before any request).
NO_LLM = "memtrace-crewai/no-llm-on-the-memory-path"
_COPIED = (
    "this is CrewAI's stock Memory rebuilt from a MemtraceMemory's fields (CrewAI's "
    "Agent.copy(), used by Crew.copy() and kickoff_for_each, copies an agent's memory that "
    "way): give the MemtraceMemory to the Crew (Crew(memory=...)), whose copies keep it"
)


class NoEmbedder:
    """The ``embedder`` of a MemtraceMemory: memtrace embeds nothing, and a stock ``Memory``
    rebuilt from a MemtraceMemory's fields must say why it cannot work instead of calling
    OpenAI's embedding API."""

    def __call__(self, texts: Any) -> Any:
        raise RuntimeError(f"memtrace-crewai embeds nothing: {_COPIED}")

    def __repr__(self) -> str:
        return "NoEmbedder()"


_LIMITS = Limits()


def _query_text(query: str) -> str:
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    query = " ".join(query.split())
    if len(query) <= MAX_QUERY_CHARS:
        return query
    cut = query.rfind(" ", 0, MAX_QUERY_CHARS + 1)
    return query[: cut if cut > 0 else MAX_QUERY_CHARS]


class MemtraceMemory(Memory):
    """CrewAI ``Memory`` backed by memtrace (see the module docstring).

    Args:
        memtrace: a memtrace URL (``sqlite:///…``, ``http://…`` with ``api_key``), a handle from
            ``memtrace_core.connect``/``aconnect``, a ``MemtraceHandle``, or the original SDK's
            client. Positional or keyword.
        agent_id: the memtrace agent of memories no CrewAI agent wrote (default ``crewai``).
        session_id: the memtrace session of this memory's writes; generated
            (``crew-<hex>``) when not given.
        namespace: the namespace root under which CrewAI scopes live (default ``["crewai"]``):
            memories elsewhere in memtrace are not this memory's.
        api_key: the server key when ``memtrace`` is an ``http(s)://`` URL.
        read_only, root_scope: as CrewAI's ``Memory``.
    """

    # What CrewAI's base class would call — an LLM and an embedder — never runs here. The
    # defaults are refusals, not OpenAI's: CrewAI's ``Agent.copy()`` (``Crew.copy()``,
    # ``kickoff_for_each``) rebuilds an agent's memory from these fields as its stock ``Memory``,
    # and that copy must fail loudly, not call OpenAI with the user's key.
    llm: Annotated[BaseLLM | str, PlainValidator(lambda v: v)] = NO_LLM
    embedder: Any = Field(default_factory=lambda: NoEmbedder())
    memtrace: Any = Field(default=None, exclude=True, repr=False)
    api_key: str | None = Field(default=None, exclude=True, repr=False)
    agent_id: str = "crewai"
    session_id: str | None = None
    namespace: tuple[str, ...] = ("crewai",)

    _layout: Layout = PrivateAttr()
    _mt_lock: Any = PrivateAttr(default_factory=threading.RLock)

    def __init__(self, memtrace: MemtraceTarget = None, /, **data: Any) -> None:
        if memtrace is not None:
            if data.get("memtrace") is not None:
                raise TypeError("memtrace given twice (positionally and as a keyword)")
            data["memtrace"] = memtrace
        super().__init__(**data)

    def model_post_init(self, __context: Any) -> None:
        if isinstance(self.storage, MemtraceStorage):
            if self.memtrace is not None:
                raise TypeError("give memtrace or storage=MemtraceStorage(...), not both")
            storage = self.storage
            self.namespace = storage.layout.root
        elif "storage" in self.model_fields_set:
            raise TypeError(
                "MemtraceMemory stores in memtrace: give memtrace=... or "
                "storage=MemtraceStorage(...), not another storage"
            )
        elif self.memtrace is None:
            raise TypeError(
                "MemtraceMemory needs a memtrace to talk to: MemtraceMemory('sqlite:///…') or "
                "MemtraceMemory('http://…', api_key=...)"
            )
        else:
            storage = MemtraceStorage(
                self.memtrace,
                agent_id=self.agent_id,
                namespace=self.namespace,
                api_key=self.api_key,
            )
        if self.session_id is None:
            self.session_id = storage.session_id or f"crew-{uuid.uuid4().hex[:16]}"
        storage.session_id = self.session_id
        self.storage = storage
        self._layout = storage.layout
        super().model_post_init(__context)

    # -- copies: a MemtraceMemory is a handle on shared storage --------------------------------

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> MemtraceMemory:
        """The same memory: what it holds is a connection to the store every copy would share
        anyway (CrewAI deep-copies agents and crews, e.g. for ``kickoff_for_each``)."""
        return self

    def __copy__(self) -> MemtraceMemory:
        return self

    @property
    def handle(self) -> Any:
        """The :class:`memtrace_core.bridge.MemtraceHandle` this memory talks through."""
        return self._storage.handle  # type: ignore[attr-defined]

    # -- scopes ------------------------------------------------------------------------------

    def _scope(self, scope: str | None, root: str | None = None) -> str | None:
        root = self.root_scope if root is None else root
        for value in (scope, root):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"a scope is a string path such as '/project/x', got {value!r}")
        if scope is None and not root:
            return None
        return join_scope_paths(root, scope)

    # -- programs ------------------------------------------------------------------------------

    def _writes(
        self,
        contents: Sequence[str],
        scope: str | None,
        categories: list[str] | None,
        metadata: dict[str, Any] | None,
        importance: float | None,
        source: str | None,
        private: bool,
        agent_role: str | None,
        root_scope: str | None,
    ) -> list[dict[str, Any]]:
        where = self._scope(scope, root_scope)
        writes = []
        for content in contents:
            if not isinstance(content, str):
                raise TypeError(f"memory content must be a string, got {type(content).__name__}")
            extra = getattr(content, "metadata", None)
            role = agent_role or getattr(content, "agent", None)
            meta = {**extra, **(metadata or {})} if isinstance(extra, dict) else metadata
            writes.append(
                self._layout.write(
                    str(content),
                    scope=where,
                    agent_id=agent_id_for(role, self.agent_id),
                    session_id=self.session_id,
                    categories=categories,
                    metadata=meta,
                    importance=importance,
                    source=source,
                    private=private,
                    key=str(uuid.uuid4()),
                    event_type="task_result" if isinstance(extra, dict) else "general",
                    dedup=True,
                )
            )
        return writes

    def _remember_one(self, write: dict[str, Any]) -> Generator[Call, Any, MemoryRecord]:
        try:
            memory: MemtraceRecord = yield Call("add_memory", (write,))
        except DuplicateMemoryError as dup:
            existing = yield from current_memory(self._layout, dup.existing_id or "")
            if existing is None:
                raise
            memory = existing
        return self._layout.record(memory)

    def _remember_many(
        self, writes: list[dict[str, Any]]
    ) -> Generator[Call, Any, list[MemoryRecord]]:
        records: list[MemoryRecord] = []
        for start in range(0, len(writes), 1000):
            result = yield Call("add_memories", (writes[start : start + 1000],))
            records.extend(self._layout.record(m) for m in result.memories)
        return records

    def _recall(
        self,
        query: str,
        scope: str | None,
        categories: list[str] | None,
        limit: int,
        source: str | None,
        include_private: bool,
    ) -> Generator[Call, Any, list[MemoryMatch]]:
        if limit <= 0:
            return []
        text = _query_text(query)
        fields: dict[str, Any] = {
            "namespace_prefix": self._layout.namespace(self._scope(scope)),
            "limit": min(limit, 1000),
        }
        if text:
            fields["query"] = text
        if categories:
            fields["tags_any"] = list(categories)
        privacy = privacy_filter(source, include_private)
        if privacy:
            fields["metadata"] = privacy
        found = yield Call("search_memories", (), fields)
        matches = []
        for rank, memory in enumerate(found.results):
            score = memory.score if memory.score is not None else 1.0 / (rank + 1)
            reasons = ["keywords"] if text else ["recency"]
            matches.append(
                MemoryMatch(record=self._layout.record(memory), score=score, match_reasons=reasons)
            )
        return matches

    def _update(
        self,
        record_id: str,
        content: str | None,
        scope: str | None,
        categories: list[str] | None,
        metadata: dict[str, Any] | None,
        importance: float | None,
    ) -> Generator[Call, Any, MemoryRecord]:
        if self.read_only:
            current = yield from current_memory(self._layout, record_id)
            memory = current
        else:
            changes = {
                name: value
                for name, value in (
                    ("content", content),
                    ("scope", scope),
                    ("categories", categories),
                    ("metadata", metadata),
                    ("importance", importance),
                )
                if value is not None
            }
            memory = yield from update_program(self._layout, record_id, changes, dedup=True)
        if memory is None:
            raise ValueError(f"Record not found: {record_id}")
        return self._layout.record(memory)

    # -- events (CrewAI's listeners see memtrace's saves and queries as the stock ones) ------

    def _emit(self, event: Any) -> None:
        try:
            crewai_event_bus.emit(self, event)
        except RuntimeError:  # the event bus shut down (process exit)
            pass

    def _saving(
        self,
        program: Generator[Call, Any, Any],
        value: str,
        metadata: dict[str, Any] | None,
        role: str | None,
        done: Callable[[Any], str] | None = None,
    ) -> Generator[Call, Any, Any]:
        """``program`` between CrewAI's save events (started; completed or failed)."""
        self._emit(
            MemorySaveStartedEvent(
                value=value, metadata=metadata, agent_role=role, source_type=_SOURCE_TYPE
            )
        )
        start = time.perf_counter()
        try:
            result = yield from program
        except Exception as exc:
            self._emit(
                MemorySaveFailedEvent(
                    value=value, metadata=metadata, error=str(exc), source_type=_SOURCE_TYPE
                )
            )
            raise
        self._emit(
            MemorySaveCompletedEvent(
                value=value if done is None else done(result),
                metadata=metadata or {},
                agent_role=role,
                save_time_ms=(time.perf_counter() - start) * 1000,
                source_type=_SOURCE_TYPE,
            )
        )
        return result

    def _querying(
        self, program: Generator[Call, Any, list[MemoryMatch]], query: str, limit: int
    ) -> Generator[Call, Any, list[MemoryMatch]]:
        """``program`` between CrewAI's query events (started; completed or failed)."""
        self._emit(MemoryQueryStartedEvent(query=query, limit=limit, source_type=_SOURCE_TYPE))
        start = time.perf_counter()
        try:
            matches = yield from program
        except Exception as exc:
            self._emit(
                MemoryQueryFailedEvent(
                    query=query, limit=limit, error=str(exc), source_type=_SOURCE_TYPE
                )
            )
            raise
        self._emit(
            MemoryQueryCompletedEvent(
                query=query,
                results=matches,
                limit=limit,
                query_time_ms=(time.perf_counter() - start) * 1000,
                source_type=_SOURCE_TYPE,
            )
        )
        return matches

    # -- CrewAI's Memory API -------------------------------------------------------------------

    def _remember(
        self,
        content: str,
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        source: str | None = None,
        private: bool = False,
        agent_role: str | None = None,
        root_scope: str | None = None,
    ) -> Program | None:
        if self.read_only:
            return None
        write = self._writes(
            [content],
            scope,
            categories,
            metadata,
            importance,
            source,
            private,
            agent_role,
            root_scope,
        )[0]
        return self._saving(self._remember_one(write), content, metadata, agent_role)

    def remember(
        self,
        content: str,
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        source: str | None = None,
        private: bool = False,
        agent_role: str | None = None,
        root_scope: str | None = None,
    ) -> MemoryRecord | None:
        """Store one memory now and return its record (the stored one for a repeat); None when
        read-only. Raises ValueError (memtrace's ValidationError) for bad input."""
        program = self._remember(
            content,
            scope,
            categories,
            metadata,
            importance,
            source,
            private,
            agent_role,
            root_scope,
        )
        return None if program is None else drive(self.handle, program)

    async def aremember(
        self,
        content: str,
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        source: str | None = None,
        private: bool = False,
        agent_role: str | None = None,
        root_scope: str | None = None,
    ) -> MemoryRecord | None:
        program = self._remember(
            content,
            scope,
            categories,
            metadata,
            importance,
            source,
            private,
            agent_role,
            root_scope,
        )
        return None if program is None else await drive_async(self.handle, program)

    def _remember_batch(
        self,
        contents: list[str],
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        source: str | None = None,
        private: bool = False,
        agent_role: str | None = None,
        root_scope: str | None = None,
    ) -> tuple[list[dict[str, Any]], Program] | None:
        if not contents or self.read_only:
            return None
        writes = self._writes(
            contents,
            scope,
            categories,
            metadata,
            importance,
            source,
            private,
            agent_role,
            root_scope,
        )
        program = self._saving(
            self._remember_many(writes),
            f"{len(writes)} memories",
            metadata,
            agent_role,
            done=lambda records: f"{len(records)} memories saved",
        )
        return writes, program

    def remember_many(
        self,
        contents: list[str],
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        source: str | None = None,
        private: bool = False,
        agent_role: str | None = None,
        root_scope: str | None = None,
    ) -> list[MemoryRecord]:
        """Store several memories in the background (CrewAI's contract: returns ``[]`` at once;
        ``recall`` and ``drain_writes`` wait for the save). The batch is validated here, before
        anything is queued (against memtrace's default limits): bad input raises at once
        (ValueError)."""
        batch = self._remember_batch(
            contents,
            scope,
            categories,
            metadata,
            importance,
            source,
            private,
            agent_role,
            root_scope,
        )
        if batch is None:
            return []
        writes, program = batch
        for index, write in enumerate(writes):
            # what the engine will check, checked before queueing (with memtrace's default
            # limits: a server configured stricter can still refuse, reported by the save)
            validate_memory(write, _LIMITS, index=index if len(writes) > 1 else None)
        self._submit_save(self._save_background, program, len(writes))
        return []

    def _save_background(self, program: Program, count: int) -> list[MemoryRecord]:
        try:
            return drive(self.handle, program)  # type: ignore[no-any-return]
        except Exception as exc:
            # reported once, as MemorySaveFailedEvent (by the program) and in the log; not
            # raised into the save pool, which would report it a second time
            logger.warning("memtrace-crewai: saving %d memories failed: %s", count, exc)
            return []

    async def aremember_many(
        self,
        contents: list[str],
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        source: str | None = None,
        private: bool = False,
        agent_role: str | None = None,
        root_scope: str | None = None,
    ) -> list[MemoryRecord]:
        """Store several memories now (awaited, not in the background) and return their records
        (repeats of stored memories are left out)."""
        batch = self._remember_batch(
            contents,
            scope,
            categories,
            metadata,
            importance,
            source,
            private,
            agent_role,
            root_scope,
        )
        if batch is None:
            return []
        return await drive_async(self.handle, batch[1])  # type: ignore[no-any-return]

    def drain_writes(self) -> None:
        """Wait for the background saves of ``remember_many``. A failed save is logged (and was
        reported as CrewAI's ``MemorySaveFailedEvent``); it does not raise here, as in CrewAI."""
        with self._pending_lock:
            pending = list(self._pending_saves)
        for future in pending:
            if not future.cancelled():
                future.exception()

    def extract_memories(self, content: str) -> list[str]:
        """The facts of a task's output, split without an LLM (:mod:`memtrace_crewai.extract`)."""
        return extract_facts(content)

    async def aextract_memories(self, content: str) -> list[str]:
        return extract_facts(content)

    def recall(
        self,
        query: str,
        scope: str | None = None,
        categories: list[str] | None = None,
        limit: int = 10,
        depth: Literal["shallow", "deep"] = "deep",
        source: str | None = None,
        include_private: bool = False,
    ) -> list[MemoryMatch]:
        """The best keyword matches of ``query`` in the scope (and below), best first; an empty
        query gives the newest memories. ``categories`` match any of them; private memories
        only for their ``source`` or with ``include_private``."""
        self.drain_writes()
        program = self._recall(query, scope, categories, limit, source, include_private)
        return drive(self.handle, self._querying(program, query, limit))  # type: ignore[no-any-return]

    async def _adrain(self) -> None:
        """:meth:`drain_writes` without blocking the event loop."""
        await asyncio.to_thread(self.drain_writes)

    async def arecall(
        self,
        query: str,
        scope: str | None = None,
        categories: list[str] | None = None,
        limit: int = 10,
        depth: Literal["shallow", "deep"] = "deep",
        source: str | None = None,
        include_private: bool = False,
    ) -> list[MemoryMatch]:
        await self._adrain()
        program = self._recall(query, scope, categories, limit, source, include_private)
        return await drive_async(self.handle, self._querying(program, query, limit))  # type: ignore[no-any-return]

    def forget(
        self,
        scope: str | None = None,
        categories: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
        record_ids: list[str] | None = None,
    ) -> int:
        """Delete the memories matching every criterion given (within ``root_scope``); returns
        how many were deleted."""
        self.drain_writes()
        program = delete_program(
            self._layout, self._scope(scope), categories, record_ids, older_than, metadata_filter
        )
        return int(drive(self.handle, program))

    async def aforget(
        self,
        scope: str | None = None,
        categories: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
        record_ids: list[str] | None = None,
    ) -> int:
        await self._adrain()
        program = delete_program(
            self._layout, self._scope(scope), categories, record_ids, older_than, metadata_filter
        )
        return int(await drive_async(self.handle, program))

    def update(
        self,
        record_id: str,
        content: str | None = None,
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
    ) -> MemoryRecord:
        """A new version of the record with the given fields changed (see the module docstring
        for its id). Raises ValueError if there is no such record."""
        self.drain_writes()
        program = self._update(record_id, content, scope, categories, metadata, importance)
        return drive(self.handle, program)  # type: ignore[no-any-return]

    async def aupdate(
        self,
        record_id: str,
        content: str | None = None,
        scope: str | None = None,
        categories: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
    ) -> MemoryRecord:
        await self._adrain()
        program = self._update(record_id, content, scope, categories, metadata, importance)
        return await drive_async(self.handle, program)  # type: ignore[no-any-return]

    def reset(self, scope: str | None = None) -> None:
        """Delete every memory of the scope (default: ``root_scope``, else everything under the
        namespace root — never memories outside it)."""
        with self._mt_lock:
            self.drain_writes()
            drive(
                self.handle,
                delete_program(self._layout, self._scope(scope), None, None, None, None),
            )

    async def areset(self, scope: str | None = None) -> None:
        await self._adrain()
        program = delete_program(self._layout, self._scope(scope), None, None, None, None)
        await drive_async(self.handle, program)

    def reset_all(self) -> None:
        """Delete every memory under the namespace root (ignoring ``root_scope``)."""
        with self._mt_lock:
            self.drain_writes()
            drive(self.handle, delete_program(self._layout, None, None, None, None, None))

    def list_records(
        self, scope: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        """The scope's records (and below), newest first."""
        self.drain_writes()
        return drive(self.handle, list_program(self._layout, self._scope(scope), limit, offset))  # type: ignore[no-any-return]

    async def alist_records(
        self, scope: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        await self._adrain()
        program = list_program(self._layout, self._scope(scope), limit, offset)
        return await drive_async(self.handle, program)  # type: ignore[no-any-return]

    def list_scopes(self, path: str | None = None) -> list[str]:
        """The immediate child scopes of ``path`` (default ``root_scope``, else ``/``)."""
        self.drain_writes()
        return drive(self.handle, scopes_program(self._layout, self._scope(path) or "/"))  # type: ignore[no-any-return]

    async def alist_scopes(self, path: str | None = None) -> list[str]:
        await self._adrain()
        program = scopes_program(self._layout, self._scope(path) or "/")
        return await drive_async(self.handle, program)  # type: ignore[no-any-return]

    def info(self, path: str | None = None) -> ScopeInfo:
        """Count, categories, oldest and newest record and child scopes of ``path``."""
        self.drain_writes()
        return drive(self.handle, scope_info_program(self._layout, self._scope(path) or "/"))  # type: ignore[no-any-return]

    async def ainfo(self, path: str | None = None) -> ScopeInfo:
        await self._adrain()
        program = scope_info_program(self._layout, self._scope(path) or "/")
        return await drive_async(self.handle, program)  # type: ignore[no-any-return]

    def tree(self, path: str | None = None, max_depth: int = 3) -> str:
        """CrewAI's scope tree (counts per scope), after pending saves."""
        self.drain_writes()
        return super().tree(path, max_depth)

    def list_categories(self, path: str | None = None) -> dict[str, int]:
        """Categories (tags) of the scope and below, with how many memories carry each."""
        self.drain_writes()
        summary = drive(self.handle, summary_program(self._layout, self._scope(path)))
        return dict(summary.tags)

    async def alist_categories(self, path: str | None = None) -> dict[str, int]:
        await self._adrain()
        summary = await drive_async(self.handle, summary_program(self._layout, self._scope(path)))
        return dict(summary.tags)

    # -- the crew's session ------------------------------------------------------------------

    def _context(self, max_tokens: int | None, since: str | None) -> Generator[Call, Any, str]:
        options: dict[str, Any] = {}
        if max_tokens is not None:
            options["max_tokens"] = max_tokens
        if since is not None:
            options["since"] = since
        try:
            context: SessionContext = yield Call("get_session_context", (self.session_id,), options)
        except NotFoundError:
            return ""
        return context.context if context.memory_count else ""

    def session_context(self, *, max_tokens: int | None = None, since: str | None = "30d") -> str:
        """This memory's session (``session_id``) as LLM-ready markdown: what the crew's agents
        remembered, in the engine's session context (``""`` before anything was stored)."""
        self.drain_writes()
        return drive(self.handle, self._context(max_tokens, since))  # type: ignore[no-any-return]

    async def asession_context(
        self, *, max_tokens: int | None = None, since: str | None = "30d"
    ) -> str:
        await self._adrain()
        return await drive_async(self.handle, self._context(max_tokens, since))  # type: ignore[no-any-return]

    def close(self) -> None:
        """Wait for pending saves, stop the save thread and close the memtrace handle if this
        memory opened it from a URL."""
        super().close()
