"""The six memory tools every framework integration offers — ``remember``, ``recall``,
``search``, ``decide``, ``session_context`` and ``forget`` — written once, framework-neutral.

The LangChain, OpenAI Agents and CrewAI integrations used to carry their own copies of the tool
bodies, the model-facing descriptions and the argument descriptions; the copies had started to
drift apart (a recall description saying "since='24h' by default" in one package and "the last
24 hours unless since is given" in the other, error messages naming ``recall`` where the tool
was ``memtrace_recall``). They are folded here, so an integration only *translates*: it wraps
each tool in its framework's tool object, plumbs the arguments the model sent into the body and
turns :class:`ToolFailure` into the framework's error result.

What lives here, per tool kind (:data:`TOOL_KINDS`):

* the body, a generator :data:`~memtrace_core.integration.Program` of memtrace calls returning
  the text for the model (:meth:`ToolSet.remember` …, run with
  :func:`~memtrace_core.integration.drive` / :func:`~memtrace_core.integration.drive_async`
  or, with every error already worded for the model, :meth:`ToolSet.run` /
  :meth:`ToolSet.arun`);
* the tool's name (:meth:`ToolSet.name`: ``prefix + kind``; LangChain uses no prefix, OpenAI
  Agents and CrewAI ``memtrace_``) and its description (:meth:`ToolSet.description`), which
  name the other tools with the same prefix;
* the arguments: names, types, defaults and descriptions (:meth:`ToolSet.arg_doc`), as a
  pydantic model (:meth:`ToolSet.args_schema`: what LangChain's ``StructuredTool`` and CrewAI's
  ``BaseTool`` take as ``args_schema``) or, for a strict JSON schema without defaults (the
  OpenAI Agents SDK), as descriptions that say what ``null`` means (``strict=True``).

``None`` means the documented default everywhere: ``since`` "24h" (recall; search looks at
every memory), recall ``limit`` 20, search ``limit`` 10, ``memory_type`` "episodic",
``event_type`` "general", ``this_session_only`` false, ``max_tokens`` the tool set's
``context_max_tokens`` (else the engine's budget).

Errors: a body handles what it can word better than the generic message (a duplicate
``remember`` or ``decide`` is a normal answer with the existing id; ``forget`` raises
:class:`ToolFailure` for an unknown id or another agent's memory); every other memtrace error
propagates out of the program. :meth:`ToolSet.run` turns those into :class:`ToolFailure` with
:func:`~memtrace_core.integration.tool_error_message`, so a wrapper catches one exception type.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from .bridge import MemtraceHandle
from .errors import DuplicateMemoryError, MemtraceError, NotFoundError, ValidationError
from .integration import (
    Call,
    Program,
    Scope,
    context_program,
    count_text,
    drive,
    drive_async,
    memory_lines,
    tool_error_message,
)
from .models import Agent, Memory, MemoryList, SearchResult
from .shortcuts import decision_item, remember_item

__all__ = [
    "DEFAULT_EVENT_TYPE",
    "DEFAULT_MEMORY_TYPE",
    "DEFAULT_RECALL_LIMIT",
    "DEFAULT_SEARCH_LIMIT",
    "DEFAULT_SINCE",
    "TOOL_KINDS",
    "FilterMemoryType",
    "ToolFailure",
    "ToolSet",
    "WritableMemoryType",
    "forget_criteria",
]

#: The tool kinds, in the order every integration lists its tools.
TOOL_KINDS: tuple[str, ...] = (
    "remember",
    "recall",
    "search",
    "decide",
    "session_context",
    "forget",
)

DEFAULT_SINCE = "24h"
DEFAULT_RECALL_LIMIT = 20
DEFAULT_SEARCH_LIMIT = 10
DEFAULT_MEMORY_TYPE = "episodic"
DEFAULT_EVENT_TYPE = "general"

#: The memory types ``remember`` writes (decisions go through ``decide``).
WritableMemoryType = Literal["episodic", "entity", "session"]
#: The memory types ``recall`` and ``search`` filter on.
FilterMemoryType = Literal["episodic", "entity", "session", "decision"]


class ToolFailure(Exception):
    """A failure whose ``str()`` is the message for the model, as is (e.g. ``forget`` of
    another agent's memory, or any memtrace error worded by :meth:`ToolSet.run`). A wrapper
    returns it as the framework's error result; it never ends the agent's run."""


# -- the arguments ------------------------------------------------------------------------------

_REQUIRED: Any = ...


@dataclass(frozen=True)
class _Arg:
    """One argument of a tool: ``doc`` may name other tools as ``{kind}`` (formatted with the
    tool set's names); ``unset`` is what leaving it out means, the phrase after "Omit" / "null"
    (``"for all"`` -> "Omit for all." / "null for all.")."""

    name: str
    annotation: Any
    default: Any
    doc: str
    unset: str | None = None


_SINCE_DOC = (
    "How far back to look: a duration ending in s, m, h, d or w (e.g. '30m', '2h', '7d', "
    "'4w'), or an ISO 8601 date-time such as '2026-12-01T09:00:00Z'."
)
_TAGS = _Arg(
    "tags",
    list[str] | None,
    None,
    "Labels, each 1-64 characters of letters, digits, '_', '.', '-' "
    "(e.g. ['billing', 'customer-42']).",
    "for none",
)
_IMPORTANCE = _Arg(
    "importance",
    float | None,
    None,
    "Importance from 0.0 (trivial) to 1.0 (critical).",
    "for none",
)
_FILTER_MEMORY_TYPE = _Arg(
    "memory_type", FilterMemoryType | None, None, "Only memories of this type.", "for all"
)
_FILTER_TAGS = _Arg(
    "tags", list[str] | None, None, "Only memories carrying all of these tags.", "for any"
)

_ARGS: dict[str, tuple[_Arg, ...]] = {
    "remember": (
        _Arg(
            "content",
            str,
            _REQUIRED,
            "What to remember, as one self-contained statement that will make sense later "
            "without this conversation (e.g. 'The customer prefers email over phone').",
        ),
        _Arg(
            "event_type",
            str,
            DEFAULT_EVENT_TYPE,
            "A short snake_case label of what kind of event or fact this is (e.g. "
            "'user_preference', 'task_done', 'error'); letters, digits and '_', up to 64.",
            f"for '{DEFAULT_EVENT_TYPE}'",
        ),
        _Arg(
            "memory_type",
            WritableMemoryType,
            DEFAULT_MEMORY_TYPE,
            "'episodic' for something that happened or was observed, 'entity' for a lasting "
            "fact about a person or thing, 'session' for state of the current session. Use the "
            "{decide} tool for decisions.",
            f"for '{DEFAULT_MEMORY_TYPE}'",
        ),
        _TAGS,
        _IMPORTANCE,
    ),
    "recall": (
        _Arg("since", str, DEFAULT_SINCE, _SINCE_DOC, f"for '{DEFAULT_SINCE}'"),
        _Arg(
            "limit",
            int,
            DEFAULT_RECALL_LIMIT,
            "The most memories to return (newest first).",
            f"for {DEFAULT_RECALL_LIMIT}",
        ),
        _FILTER_MEMORY_TYPE,
        _Arg(
            "event_type",
            str | None,
            None,
            "Only memories with this event_type (e.g. 'error').",
            "for all",
        ),
        _FILTER_TAGS,
        _Arg(
            "this_session_only",
            bool,
            False,
            "true to recall only the current session's memories, false for all of your sessions.",
            "for false",
        ),
    ),
    "search": (
        _Arg(
            "query",
            str,
            _REQUIRED,
            "Keywords to look for (e.g. 'refund policy customer 42'); memories that match more "
            "of them rank first. Plain words, not a question.",
        ),
        _Arg(
            "limit",
            int,
            DEFAULT_SEARCH_LIMIT,
            "The most results to return (best first).",
            f"for {DEFAULT_SEARCH_LIMIT}",
        ),
        _Arg("since", str | None, None, _SINCE_DOC, "to search all of your memories"),
        _FILTER_MEMORY_TYPE,
        _FILTER_TAGS,
    ),
    "decide": (
        _Arg(
            "decision",
            str,
            _REQUIRED,
            "The decision taken, as one statement (e.g. 'Escalate ticket 42 to tier 2').",
        ),
        _Arg("reasoning", str, _REQUIRED, "Why: the facts and trade-offs behind the decision."),
        _TAGS,
        _IMPORTANCE,
    ),
    "session_context": (
        _Arg(
            "max_tokens",
            int | None,
            None,
            "Keep the summary within about this many tokens (newest memories kept first).",
            "for the default budget",
        ),
        _Arg("since", str | None, None, _SINCE_DOC, "for the last 24 hours"),
    ),
    "forget": (
        _Arg(
            "memory_id",
            str,
            _REQUIRED,
            "The id of the memory to delete, as shown in brackets by {recall} or {search} "
            "(e.g. 'mem_01JEXAMPLE...').",
        ),
    ),
}

_DESCRIPTIONS: dict[str, str] = {
    "remember": (
        "Store a fact, observation or event in long-term memory so it is available in later "
        "turns and future sessions. Use it for anything worth knowing later: user preferences, "
        "facts learned, tasks done, errors met. Returns the new memory's id. Storing the same "
        "content again is reported as already remembered (nothing is duplicated)."
    ),
    "recall": (
        "List your recent memories, newest first, within a time window (the last 24 hours "
        "unless since is given; e.g. '2h', '7d'). Use it to see what happened recently. Each "
        "line shows [id] time type/event_type (session; tags): content."
    ),
    "search": (
        "Search all of your memories by keywords, best match first. Use it to find a specific "
        "fact or past event whatever its age (e.g. query='customer email preference'). Each "
        "line shows [id] time type/event_type (session; tags): content."
    ),
    "decide": (
        "Record a decision you made and the reasoning behind it, so that later turns and other "
        "sessions know what was decided and why. Returns the decision's memory id."
    ),
    "session_context": (
        "Get a markdown summary of the current session's memories (recent actions, decisions, "
        "errors), or of your memories across sessions when this session has none yet. Use it "
        "to catch up on where things stand."
    ),
    "forget": (
        "Permanently delete one of your memories by its id (from {recall} or {search}). Use "
        "it when a memory is wrong or must be removed. Only your own memories can be deleted."
    ),
}


@functools.cache
def _args_model(prefix: str, kind: str) -> type[BaseModel]:
    tools = ToolSet(prefix=prefix)
    fields: dict[str, Any] = {
        arg.name: (
            arg.annotation,
            Field(default=arg.default, description=tools.arg_doc(kind, arg.name)),
        )
        for arg in _ARGS[kind]
    }
    model: type[BaseModel] = create_model(
        "".join(part.capitalize() for part in kind.split("_")) + "Args",
        __doc__=f"Arguments of the {tools.name(kind)} tool.",
        __module__=__name__,
        **fields,
    )
    return model


# -- the tool set -------------------------------------------------------------------------------


def forget_criteria(memory: Memory) -> dict[str, Any]:
    """The delete that forgets ``memory`` (every memory tool's forget, the MCP server's too): a
    current memory goes with its earlier versions (deleting it alone would make the previous
    version current again); an earlier version goes alone, never the memory that replaced it."""
    return {"ids": [memory.id], "all_versions": memory.superseded_by is None}


@dataclass(frozen=True)
class ToolSet:
    """The six memory tools with one naming: ``prefix`` + kind (``""`` in LangChain,
    ``"memtrace_"`` in OpenAI Agents and CrewAI). ``context_max_tokens`` is the budget of
    ``session_context`` when the model gives none (``None``: the engine's default)."""

    prefix: str = "memtrace_"
    context_max_tokens: int | None = None
    #: The namespace ``remember`` and ``decide`` write into (None: none), so an integration
    #: whose own memory reads a namespace tree (CrewAI's scopes) sees what the tools stored;
    #: reads stay the agent's, across namespaces.
    namespace: tuple[str, ...] | None = None
    #: A metadata filter every read (recall, search) also applies: an integration's rule on
    #: what its agents may see (CrewAI: private records only for their source).
    read_filter: Mapping[str, Any] | None = field(default=None, hash=False)

    # -- names, descriptions, arguments ---------------------------------------------------

    def name(self, kind: str) -> str:
        """The tool's name: ``prefix + kind``. Raises ValueError for an unknown kind."""
        if kind not in TOOL_KINDS:
            raise ValueError(f"unknown memtrace tool kind {kind!r}: one of {', '.join(TOOL_KINDS)}")
        return self.prefix + kind

    @property
    def names(self) -> tuple[str, ...]:
        """Every tool's name, in :data:`TOOL_KINDS` order."""
        return tuple(self.name(kind) for kind in TOOL_KINDS)

    def kinds(self, include: Iterable[str] | None = None) -> tuple[str, ...]:
        """The kinds named in ``include`` (each a kind or a tool name: ``"recall"`` or
        ``"memtrace_recall"``), in :data:`TOOL_KINDS` order; all of them for ``None``.
        Raises ValueError naming the unknown ones."""
        if include is None:
            return TOOL_KINDS
        if isinstance(include, str):
            raise TypeError("include is a list of tool names, not one string")
        by_name = {self.name(kind): kind for kind in TOOL_KINDS}
        wanted = list(include)
        unknown = [n for n in wanted if n not in TOOL_KINDS and n not in by_name]
        if unknown:
            raise ValueError(
                f"unknown memtrace tool(s) {unknown}: choose from {', '.join(self.names)}"
            )
        chosen = {by_name.get(n, n) for n in wanted}
        return tuple(kind for kind in TOOL_KINDS if kind in chosen)

    def _format(self, text: str) -> str:
        return text.format(**{kind: self.name(kind) for kind in TOOL_KINDS})

    def description(self, kind: str) -> str:
        """The model-facing description of the tool (other tools named with this prefix)."""
        self.name(kind)
        return self._format(_DESCRIPTIONS[kind])

    def arg_names(self, kind: str) -> tuple[str, ...]:
        """The tool's arguments, in the order models see them."""
        self.name(kind)
        return tuple(arg.name for arg in _ARGS[kind])

    def arg_doc(self, kind: str, arg: str, *, strict: bool = False) -> str:
        """The description of argument ``arg`` of tool ``kind``.

        ``strict=False`` is for a schema with defaults (a pydantic model: LangChain, CrewAI):
        it says what omitting the argument means only where the schema's default (``None``)
        cannot. ``strict=True`` is for a strict JSON schema, where every argument is required
        and nullable (OpenAI Agents): it always says what ``null`` means.
        """
        self.name(kind)
        spec = next((a for a in _ARGS[kind] if a.name == arg), None)
        if spec is None:
            raise ValueError(f"{self.name(kind)} has no argument {arg!r}")
        doc = self._format(spec.doc)
        if spec.unset is None:
            return doc
        if strict:
            return f"{doc} null {spec.unset}."
        if spec.default is None:
            return f"{doc} Omit {spec.unset}."
        return doc

    def args_schema(self, kind: str) -> type[BaseModel]:
        """The tool's arguments as a pydantic model (``RememberArgs``, ``RecallArgs``, …): the
        ``args_schema`` of a LangChain ``StructuredTool`` or a CrewAI ``BaseTool``. Defaults
        are the documented ones; ``model_dump()`` of an instance is the body's keyword
        arguments. One model per prefix and kind (cached)."""
        self.name(kind)
        return _args_model(self.prefix, kind)

    # -- running ---------------------------------------------------------------------------

    def program(self, kind: str, scope: Scope, args: Mapping[str, Any]) -> Program:
        """The body of tool ``kind`` with the model's arguments ``args`` (by name; missing
        ones take their defaults)."""
        self.name(kind)
        body = getattr(self, kind)
        program: Program = body(scope, **args)
        return program

    def run(self, handle: MemtraceHandle, kind: str, scope: Scope, args: Mapping[str, Any]) -> str:
        """Run tool ``kind`` with blocking calls: the text for the model. Raises
        :class:`ToolFailure` (the message for the model) for every memtrace error."""
        try:
            return str(drive(handle, self.program(kind, scope, args)))
        except MemtraceError as exc:
            raise ToolFailure(tool_error_message(self.name(kind), exc)) from exc

    async def arun(
        self, handle: MemtraceHandle, kind: str, scope: Scope, args: Mapping[str, Any]
    ) -> str:
        """:meth:`run` with async calls (never blocking the event loop)."""
        try:
            return str(await drive_async(handle, self.program(kind, scope, args)))
        except MemtraceError as exc:
            raise ToolFailure(tool_error_message(self.name(kind), exc)) from exc

    # -- the bodies ------------------------------------------------------------------------

    def remember(
        self,
        scope: Scope,
        content: str,
        *,
        event_type: str | None = None,
        memory_type: str | None = None,
        tags: list[str] | None = None,
        importance: float | None = None,
    ) -> Program:
        """Store ``content`` for the scope's agent and session. A duplicate is an answer (the
        existing id), not an error."""
        fields: dict[str, Any] = {
            "session_id": scope.session_id,
            "memory_type": DEFAULT_MEMORY_TYPE if memory_type is None else memory_type,
            "event_type": DEFAULT_EVENT_TYPE if event_type is None else event_type,
            "tags": tags,
            "importance": importance,
        }
        try:
            if self.namespace is None:
                memory: Memory = yield Call("remember", (scope.agent_id, content), fields)
            else:
                item = remember_item(scope.agent_id, content, metadata=None, **fields)
                memory = yield Call("add_memory", ({**item, "namespace": list(self.namespace)},))
        except DuplicateMemoryError as dup:
            ref = f" as {dup.existing_id}" if dup.existing_id else ""
            return (
                f"Already remembered{ref}: the same content is stored already; nothing new was "
                "written."
            )
        return f"Remembered as {memory.id} ({memory.memory_type}/{memory.event_type})."

    def recall(
        self,
        scope: Scope,
        *,
        since: str | None = None,
        limit: int | None = None,
        memory_type: str | None = None,
        event_type: str | None = None,
        tags: list[str] | None = None,
        this_session_only: bool | None = None,
    ) -> Program:
        """The agent's memories since ``since``, newest first, one line each."""
        since = DEFAULT_SINCE if since is None else since
        filters: dict[str, Any] = {}
        if memory_type is not None:
            filters["memory_type"] = memory_type
        if event_type is not None:
            filters["event_type"] = event_type
        if tags:
            filters["tags"] = tags
        where = ""
        if this_session_only:
            if scope.session_id is None:
                return (
                    f"There is no current session: call {self.name('recall')} with "
                    "this_session_only=false."
                )
            filters["session_id"] = scope.session_id
            where = f" in session {scope.session_id}"
        size = DEFAULT_RECALL_LIMIT if limit is None else limit
        if self.read_filter is None:
            listed: MemoryList = yield Call(
                "recall", (scope.agent_id, since), {"limit": size, **filters}
            )
            memories, count, has_more = listed.memories, listed.count, listed.has_more
        else:
            # the same list as recall's (the agent's, in the window, newest first), filtered
            query = {
                "agent_id": scope.agent_id,
                "since": since,
                "limit": size,
                "order": "desc",
                "metadata": dict(self.read_filter),
                **{k: v for k, v in filters.items() if k in ("tags", "session_id")},
            }
            if memory_type is not None:
                query["memory_types"] = [memory_type]
            if event_type is not None:
                query["event_types"] = [event_type]
            found: SearchResult = yield Call("search_memories", (), query)
            memories, count, has_more = found.results, found.count, found.has_more
        if not memories:
            return f"No memories{where} since {since}."
        more = " More exist: narrow since or raise limit." if has_more else ""
        return f"{count_text(count)}{where} since {since}, newest first:{more}\n" + memory_lines(
            memories
        )

    def search(
        self,
        scope: Scope,
        query: str,
        *,
        limit: int | None = None,
        since: str | None = None,
        memory_type: str | None = None,
        tags: list[str] | None = None,
    ) -> Program:
        """The agent's memories matching ``query``, best first (all of them unless ``since``)."""
        fields: dict[str, Any] = {
            "query": query,
            "agent_id": scope.agent_id,
            "limit": DEFAULT_SEARCH_LIMIT if limit is None else limit,
        }
        if since is not None:
            fields["since"] = since
        if memory_type is not None:
            fields["memory_types"] = [memory_type]
        if tags:
            fields["tags"] = tags
        if self.read_filter is not None:
            fields["metadata"] = dict(self.read_filter)
        found: SearchResult = yield Call("search_memories", (), fields)
        if not found.results:
            return f"No memories match {query!r}. Try fewer or other keywords."
        return f"{count_text(found.count)} match {query!r}, best first:\n" + memory_lines(
            found.results
        )

    def decide(
        self,
        scope: Scope,
        decision: str,
        reasoning: str,
        *,
        tags: list[str] | None = None,
        importance: float | None = None,
    ) -> Program:
        """Record ``decision`` with its ``reasoning``. A duplicate is an answer, not an error."""
        fields: dict[str, Any] = {
            "session_id": scope.session_id,
            "tags": tags,
            "importance": importance,
        }
        try:
            if self.namespace is None:
                memory: Memory = yield Call("decide", (scope.agent_id, decision, reasoning), fields)
            else:
                item = decision_item(scope.agent_id, decision, reasoning, **fields)
                memory = yield Call("add_memory", ({**item, "namespace": list(self.namespace)},))
        except DuplicateMemoryError as dup:
            ref = f" as {dup.existing_id}" if dup.existing_id else ""
            return f"Decision already recorded{ref}; nothing new was written."
        return f"Decision recorded as {memory.id}."

    def session_context(
        self, scope: Scope, *, max_tokens: int | None = None, since: str | None = None
    ) -> Program:
        """The engine's markdown context of the session, or of the agent when the session has
        no memories yet (or there is no session)."""
        options: dict[str, Any] = {}
        tokens = self.context_max_tokens if max_tokens is None else max_tokens
        if tokens is not None:
            options["max_tokens"] = tokens
        if since is not None:
            options["since"] = since
        context = yield from context_program(scope, options)
        if context is None or context.memory_count == 0:
            return "No memories yet for this session or agent."
        return context.context

    def forget(self, scope: Scope, memory_id: str) -> Program:
        """Delete one of the agent's own memories. Raises :class:`ToolFailure` for an unknown
        or malformed id and for another agent's memory (which stays)."""
        forget, recall, search = self.name("forget"), self.name("recall"), self.name("search")
        try:
            memory: Memory = yield Call("get_memory", (memory_id,))
        except NotFoundError:
            raise ToolFailure(
                f"{forget} failed: no memory {memory_id!r} (wrong id, or already forgotten). "
                f"Use {recall} or {search} to find the id."
            ) from None
        except ValidationError as exc:
            raise ToolFailure(
                f"{forget} failed: {exc.message.rstrip('.')}. Use the id shown in brackets by "
                f"{recall}."
            ) from None
        if memory.agent_id != scope.agent_id:
            # the memory's agent_id may be the registered name or id of this same agent
            try:
                agent: Agent = yield Call("get_agent", (memory.agent_id,))
                same = scope.agent_id in (agent.id, agent.name)
            except NotFoundError:
                same = False
            if not same:
                raise ToolFailure(
                    f"{forget} refused: memory {memory_id} belongs to another agent; you can "
                    "only forget your own memories."
                )
        yield Call("delete_memories", (), forget_criteria(memory))
        return f"Forgot {memory_id}: {memory.content[:80]}"
