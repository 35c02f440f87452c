"""The MCP tools, derived from the operations table.

Each tool is a :class:`ToolSpec` naming the REST operation it maps to (``op_id`` in
:data:`~memtrace_server.operations.OPERATIONS`). Its arguments are that operation's: the path
parameters, the query parameters (with the schemas the OpenAPI document gives them) and the
properties of its body model (with the model's own JSON schema), minus the ones the spec
``exclude``\\ s with a reason. A field added to ``MemoryCreate``, ``SearchQuery`` or a query
parameter added to ``listMemories`` therefore appears in the tool by itself; a test checks that
every argument of every operation is either offered or excluded on purpose. The permission a
tool needs is its operation's too.

What a spec adds: the tool's name, the model-facing description and, per argument, the
original MCP server's wording where it had one; the documented defaults the tool applies
(``since`` 24h and ``limit`` 50 for recall, as the original); extra arguments the operation does
not have (``decision`` / ``reasoning``, ``forget``'s ``memory_id``); and a runner that calls
the memtrace method set (:class:`~memtrace_core.api.AsyncMemoryAPI`) and words the answer as
compact text, with the response model as ``structuredContent``.

The SDK validates nothing but unknown and missing arguments (:mod:`.server` passes every value
through as sent); every other rule (types, patterns, ranges, lengths, combinations) is the
engine's, applied exactly as on the REST API and reported as a tool error naming the argument.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from memtrace_core import (
    AgentStats,
    DuplicateMemoryError,
    Memory,
    MemoryCreate,
    MemoryList,
    SearchResult,
    Session,
    SessionContext,
    SessionList,
)
from memtrace_core.api import AsyncMemoryAPI
from memtrace_core.errors import NotFoundError, ValidationError
from memtrace_core.integration import count_text, memory_lines
from memtrace_core.memory_tools import forget_criteria
from memtrace_core.models import ID_PATTERN, Agent, DeleteResult
from memtrace_core.shortcuts import decision_item
from memtrace_core.timeutil import format_dt

from ..openapi import parameters
from ..operations import OPERATIONS, Operation

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_SINCE",
    "TOOLS",
    "Argument",
    "Defaults",
    "ToolSpec",
    "arguments",
    "operation_arguments",
]

DEFAULT_SINCE = "24h"
DEFAULT_LIMIT = 50

#: Runs a tool: the handle, the arguments the model gave (``None`` dropped, defaults applied)
#: and the configured defaults; returns the text for the model and the structured result.
Runner = Callable[[AsyncMemoryAPI, dict[str, Any], "Defaults"], Awaitable[tuple[str, BaseModel]]]


@dataclass(frozen=True)
class Defaults:
    """What the MCP server was started with, so the model need not invent ids."""

    agent_id: str | None = None
    session_id: str | None = None


@dataclass(frozen=True)
class Argument:
    """One argument of a tool as advertised: its JSON schema (without ``description``), the
    description, whether it is required, and the default the tool applies (None: none)."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False
    default: Any = None

    @property
    def allows_string(self) -> bool:
        """True when the schema allows a string (or anything): the SDK must then pass a string
        value through as sent, never decode it as JSON."""
        branches = self.schema.get("anyOf", [self.schema])
        return any(
            ("type" not in b and "enum" not in b)  # {}: any JSON value
            or b.get("type") == "string"
            or bool(b.get("enum") and any(isinstance(e, str) for e in b["enum"]))
            for b in branches
        )


@dataclass(frozen=True)
class ToolSpec:
    """One MCP tool (see the module docstring)."""

    name: str
    title: str
    description: str
    op_id: str
    run: Runner
    output: type[BaseModel]
    #: The body model when the operation's body is not one model (``createMemories`` takes
    #: one memory or a batch: the tools write one ``MemoryCreate``).
    body: type[BaseModel] | None = None
    #: Arguments of the operation the tool does not offer, each with the reason.
    exclude: Mapping[str, str] = field(default_factory=dict)
    #: Argument descriptions replacing the table's (the original's wording, what a default means).
    docs: Mapping[str, str] = field(default_factory=dict)
    #: Documented defaults the tool applies (advertised in the schema).
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: Arguments the operation does not have, first in the schema.
    extra: tuple[Argument, ...] = ()
    #: Arguments that are required although the operation makes them optional (the
    #: original's ``agent_id`` of recall).
    required: tuple[str, ...] = ()
    #: Which of ``agent_id`` / ``session_id`` the runner fills in from the configured defaults
    #: (the argument is then optional, and says so, when a default is configured). Every other
    #: tool leaves them out when the model does: e.g. search spans every agent.
    configured: tuple[str, ...] = ()
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False

    @property
    def operation(self) -> Operation:
        return _operation(self.op_id)

    @property
    def permission(self) -> str:
        """The permission the operation needs (``read``, ``write``)."""
        return self.operation.permission or "read"


@functools.cache
def _operation(op_id: str) -> Operation:
    for op in OPERATIONS:
        if op.op_id == op_id:
            return op
    raise KeyError(f"no operation {op_id!r}")


def _body_model(op: Operation, override: type[BaseModel] | None) -> type[BaseModel] | None:
    if override is not None:
        return override
    return op.body if isinstance(op.body, type) and issubclass(op.body, BaseModel) else None


@functools.cache
def _model_properties(model: type[BaseModel]) -> tuple[dict[str, Any], frozenset[str]]:
    schema = model.model_json_schema(mode="validation")
    if "$defs" in schema:  # pragma: no cover - guarded by a test: tool arguments are flat
        raise TypeError(f"{model.__name__} has nested models; MCP tool arguments must be flat")
    return schema.get("properties", {}), frozenset(schema.get("required", ()))


def operation_arguments(
    op: Operation, body: type[BaseModel] | None = None
) -> list[tuple[str, dict[str, Any], str, bool]]:
    """Every argument of an operation: ``(name, schema, description, required)`` for its path
    and query parameters (as the OpenAPI document has them) and its body model's properties."""
    out: list[tuple[str, dict[str, Any], str, bool]] = []
    for param in parameters(op):
        out.append(
            (param["name"], dict(param["schema"]), param.get("description", ""), param["required"])
        )
    model = _body_model(op, body)
    if model is not None:
        props, required = _model_properties(model)
        for name, prop in props.items():
            schema = {k: v for k, v in prop.items() if k not in ("title", "description")}
            out.append((name, schema, prop.get("description", ""), name in required))
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, also allowing ``null`` (which every optional argument means "not given")."""
    if not schema or schema.get("type") == "null":
        return schema
    branches = schema.get("anyOf")
    if branches is not None:
        if any(b.get("type") == "null" for b in branches):
            return schema
        return {**schema, "anyOf": [*branches, {"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]}


def arguments(spec: ToolSpec, defaults: Defaults) -> list[Argument]:
    """The tool's arguments as advertised under ``defaults``: required ones first."""
    args = list(spec.extra)
    for name, schema, doc, required in operation_arguments(spec.operation, spec.body):
        if name in spec.exclude:
            continue
        required = required or name in spec.required
        configured = {"agent_id": defaults.agent_id, "session_id": defaults.session_id}.get(name)
        description = spec.docs.get(name) or doc or _COMMON_DOCS.get(name, "")
        if not description:
            raise ValueError(f"{spec.name}: argument {name} has no description")
        if configured is not None and name in spec.configured:
            required = False
            description = f"{description}. Default: {configured!r} (configured)."
        default = spec.defaults.get(name)
        if default is not None and "Default:" not in description:
            description = f"{description}. Default: {default!r}."
        schema.pop("default", None)
        if not required:
            schema = _nullable(schema)
        args.append(Argument(name, schema, description.replace("..", "."), required, default))
    return sorted(args, key=lambda a: not a.required)


# -- text ---------------------------------------------------------------------------------------


def _when(value: Any) -> str:
    return format_dt(value) if value is not None else "-"


def _memory_text(verb: str, memory: Memory) -> str:
    where = f", session {memory.session_id}" if memory.session_id else ""
    return (
        f"{verb} {memory.id} ({memory.memory_type}/{memory.event_type}, agent "
        f"{memory.agent_id}{where}) at {_when(memory.time)}."
    )


def _session_line(s: Session) -> str:
    closed = f", closed {_when(s.closed_at)}" if s.closed_at else ""
    meta = f" {_compact(s.metadata)}" if s.metadata else ""
    return f"- [{s.id}] {s.status}, agent {s.agent_id}, started {_when(s.created_at)}{closed}{meta}"


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def _without(args: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k not in names}


def _given_or_default(args: dict[str, Any], defaults: Defaults, name: str) -> str:
    """``agent_id`` / ``session_id``: the model's, else the configured one."""
    value = args.get(name) or getattr(defaults, name)
    if not value:
        what = name.removesuffix("_id")
        raise ValidationError(f"{name} is required (no default {what} is configured)", field=name)
    return str(value)


def _agent(args: dict[str, Any], defaults: Defaults) -> str:
    return _given_or_default(args, defaults, "agent_id")


def _session(args: dict[str, Any], defaults: Defaults) -> str:
    return _given_or_default(args, defaults, "session_id")


# -- runners ------------------------------------------------------------------------------------


async def _remember(
    api: AsyncMemoryAPI, args: dict[str, Any], d: Defaults
) -> tuple[str, BaseModel]:
    item = {**args, "agent_id": _agent(args, d)}
    if d.session_id and "session_id" not in item:
        item["session_id"] = d.session_id
    return await _write(api, item, "Remembered")


async def _write(api: AsyncMemoryAPI, item: dict[str, Any], verb: str) -> tuple[str, BaseModel]:
    try:
        memory = await api.add_memory(item)
    except DuplicateMemoryError as dup:
        if not dup.existing_id:
            raise
        existing = await api.get_memory(dup.existing_id)
        return (
            f"Already stored as {existing.id} (the same content within the dedup window); "
            "nothing new was written.",
            existing,
        )
    return _memory_text(verb, memory), memory


async def _decide(api: AsyncMemoryAPI, args: dict[str, Any], d: Defaults) -> tuple[str, BaseModel]:
    rest = _without(args, "decision", "reasoning")
    if d.session_id and "session_id" not in rest:
        rest["session_id"] = d.session_id
    item = {
        **rest,
        **decision_item(
            _agent(args, d),
            args.get("decision", ""),
            args.get("reasoning", ""),
            session_id=rest.get("session_id"),
            tags=rest.get("tags"),
            importance=rest.get("importance"),
        ),
    }
    metadata = rest.get("metadata")
    if isinstance(metadata, dict):
        item["metadata"] = {**metadata, "reasoning": args.get("reasoning", "")}
    elif metadata is not None:
        item["metadata"] = metadata  # not an object: the engine refuses it with its message
    return await _write(
        api, {k: v for k, v in item.items() if v is not None}, "Decision recorded as"
    )


async def _recall(api: AsyncMemoryAPI, args: dict[str, Any], d: Defaults) -> tuple[str, BaseModel]:
    options = {**args, "agent_id": _agent(args, d)}
    listed: MemoryList = await api.list_memories(options)
    since = options.get("since")
    window = f" since {since}" if since else ""
    if not listed.memories:
        return f"No memories of agent {options['agent_id']}{window}.", listed
    order = "oldest first" if options.get("order") == "asc" else "newest first"
    more = ""
    if listed.has_more:
        offset = int(options.get("offset") or 0) + len(listed.memories)
        more = f" More exist: call again with offset={offset}."
    head = f"{count_text(listed.count)} of agent {options['agent_id']}{window}, {order}:{more}"
    return head + "\n" + memory_lines(listed.memories), listed


async def _search(api: AsyncMemoryAPI, args: dict[str, Any], d: Defaults) -> tuple[str, BaseModel]:
    query = dict(args)
    if not query.get("query") and "order" not in query:
        query["order"] = "desc"
    found: SearchResult = await api.search_memories(query)
    what = f" match {query['query']!r}" if query.get("query") else ""
    if not found.results:
        hint = " Try fewer or other keywords." if what else ""
        return f"No memories{what}.{hint}", found
    if query.get("query"):
        order = "best first"
    else:
        order = "oldest first" if query.get("order") == "asc" else "newest first"
    more = " More exist: raise limit or use offset." if found.has_more else ""
    head = f"{count_text(found.count)}{what}, {order}:{more}"
    # search spans agents unless one is named: each line says whose memory it is
    return head + "\n" + memory_lines(found.results, agent="agent_id" not in query), found


async def _session_create(
    api: AsyncMemoryAPI, args: dict[str, Any], d: Defaults
) -> tuple[str, BaseModel]:
    session = await api.create_session({**args, "agent_id": _agent(args, d)})
    return (
        f"Session {session.id} started for agent {session.agent_id}. Pass "
        f"session_id={session.id!r} to scope memories to it.",
        session,
    )


async def _session_context(
    api: AsyncMemoryAPI, args: dict[str, Any], d: Defaults
) -> tuple[str, BaseModel]:
    session_id = _session(args, d)
    context: SessionContext = await api.get_session_context(
        session_id, _without(args, "session_id")
    )
    if context.memory_count == 0:
        return f"No memories in session {session_id} for this window.", context
    return context.context, context


async def _agent_register(
    api: AsyncMemoryAPI, args: dict[str, Any], d: Defaults
) -> tuple[str, BaseModel]:
    agent: Agent = await api.register_agent(args)
    return (
        f"Registered agent {agent.id} named {agent.name!r}. Use agent_id={agent.id!r}"
        + (f" (or {agent.name!r})" if ID_PATTERN.match(agent.name) else "")
        + " for its memories.",
        agent,
    )


#: Filters that alone would make ``memtrace_forget`` a wipe of everything in a window.
_TIME_ONLY = frozenset(
    {
        "since",
        "until",
        "recorded_since",
        "recorded_until",
        "all_versions",
        "include_superseded",
        "namespace_prefix",  # [] is every namespaced memory
    }
)


async def _forget(api: AsyncMemoryAPI, args: dict[str, Any], d: Defaults) -> tuple[str, BaseModel]:
    flt = {k: v for k, v in _without(args, "memory_id").items() if v not in ([], {})}
    memory_id = args.get("memory_id")
    if memory_id is not None:
        if not isinstance(memory_id, str):
            raise ValidationError("memory_id must be a string", field="memory_id")
        if flt:
            raise ValidationError(
                "give memory_id or filters, not both (memory_id deletes that one memory)",
                field="memory_id",
            )
        try:
            memory = await api.get_memory(memory_id)  # a malformed id is a ValidationError
        except NotFoundError:
            raise NotFoundError(
                f"no memory {memory_id} (wrong id, or already forgotten): find ids with "
                "memtrace_recall or memtrace_search"
            ) from None
        flt = forget_criteria(memory)
    elif not set(flt) - _TIME_ONLY:
        raise ValidationError(
            "give memory_id, or filters that say whose or which memories (agent_id, "
            "session_id, tags, memory_types, event_types, ids, metadata, …); a time range "
            "alone would delete every agent's memories in it",
            field="memory_id",
        )
    deleted = DeleteResult(deleted=await api.delete_memories(flt))
    if memory_id is not None and deleted.deleted == 0:
        raise NotFoundError(f"memory {memory_id} was not deleted (already gone?)")
    return f"Deleted {count_text(deleted.deleted)}.", deleted


async def _session_close(
    api: AsyncMemoryAPI, args: dict[str, Any], d: Defaults
) -> tuple[str, BaseModel]:
    session_id = _session(args, d)
    session = await api.update_session(
        session_id, {**_without(args, "session_id"), "status": "closed"}
    )
    return f"Session {session.id} closed at {_when(session.closed_at)}.", session


async def _sessions_list(
    api: AsyncMemoryAPI, args: dict[str, Any], d: Defaults
) -> tuple[str, BaseModel]:
    listed: SessionList = await api.list_sessions(**args)
    if not listed.sessions:
        return "No sessions.", listed
    more = " More exist: use offset." if listed.has_more else ""
    head = f"{len(listed.sessions)} session{'s' if len(listed.sessions) != 1 else ''}, newest first:{more}"
    return head + "\n" + "\n".join(_session_line(s) for s in listed.sessions), listed


async def _agent_stats(
    api: AsyncMemoryAPI, args: dict[str, Any], d: Defaults
) -> tuple[str, BaseModel]:
    agent = _agent(args, d)
    stats: AgentStats = await api.get_agent_stats(agent, **_without(args, "agent_id"))
    types = ", ".join(f"{k} {v}" for k, v in sorted(stats.memory_types.items())) or "none"
    text = (
        f"Agent {stats.agent_id}: {count_text(stats.memory_count)} ({stats.memories_24h} in the "
        f"last 24h, {stats.errors_24h} errors), {stats.session_count} sessions "
        f"({stats.active_sessions} active), last active {_when(stats.last_active_at)}. "
        f"By type: {types}."
    )
    return text, stats


# -- the tools ----------------------------------------------------------------------------------

_AGENT = (
    "Agent ID: the agent the memory belongs to — any id you choose (a letter, then letters, "
    "digits, '_' or '-'), or a registered agent's id (registration is optional)"
)
_SESSION = "Session ID to scope this memory to (from memtrace_session_create)"
#: Descriptions of arguments the operations table leaves undocumented (filters of the list
#: query); a tool's ``docs`` win.
_COMMON_DOCS = {
    "agent_id": "Only this agent's memories (an id, or a registered agent's name)",
    "session_id": "Only this session's memories",
    "memory_type": "Only memories of this type (episodic, decision, entity, session)",
    "event_type": "Only memories with this event type (e.g. error)",
    "since": "From this time: a duration ago (30m, 24h, 7d, 2w) or RFC 3339; inclusive",
    "until": "Before this time: a duration ago, 'now' or RFC 3339; exclusive",
    "order": "By time: 'desc' (newest first) or 'asc'",
    "offset": "Results to skip (paging)",
    "limit": "Max results",
    "status": "Only sessions with this status",
    "tags": "Only memories carrying every one of these tags",
    "memory_types": "Only memories of these types (episodic, decision, entity, session)",
    "event_types": "Only memories with one of these event types",
    "namespace": "Only memories in exactly this namespace",
    "recorded_since": "Only memories stored (recorded_at) from this time; inclusive",
    "recorded_until": "Only memories stored (recorded_at) before this time; exclusive",
    "dedup_key": "Your own dedup key: a second write with the same key within the dedup "
    "window is reported as already stored (default: derived from the content)",
    "parent_id": "ID of a memory this one follows up (threads)",
    "metadata": "Arbitrary key-value metadata (a JSON object)",
    "replace_metadata": "true to replace the session's metadata instead of merging into it",
}
_MEMORY_FIELDS = {
    "agent_id": _AGENT,
    "content": "Memory content text",
    "memory_type": "Memory type: episodic (default), decision, entity, session",
    "event_type": "Event type (e.g. page_crawled, error, api_call). Default: general",
    "session_id": _SESSION,
    "tags": "Tags for categorization",
    "importance": "Importance score 0.0 to 1.0",
    "metadata": "Arbitrary key-value metadata (a JSON object)",
}

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "memtrace_remember",
        "Remember",
        "Store a memory. Use this to record actions, observations, events, or any information "
        "the agent should remember later. Storing the same content again within the dedup "
        "window returns the stored memory instead of a copy. To replace a memory that is no "
        "longer true, pass its id as supersedes.",
        "createMemories",
        _remember,
        Memory,
        body=MemoryCreate,
        docs=_MEMORY_FIELDS,
        configured=("agent_id", "session_id"),
    ),
    ToolSpec(
        "memtrace_recall",
        "Recall recent memories",
        "Retrieve recent memories for an agent, in reverse chronological order (oldest first "
        "with order='asc'), within a time window: the last 24 hours unless since is given. "
        "Each line shows [id] time type/event_type (session; tags): content.",
        "listMemories",
        _recall,
        MemoryList,
        docs={
            "agent_id": "Agent ID (an id or a registered agent's name)",
            "since": "Time window (e.g. 2h, 24h, 7d) or an RFC 3339 time",
            "session_id": "Filter by session ID",
            "memory_type": "Filter by memory type",
            "limit": "Max results (at most 1000)",
        },
        defaults={"since": DEFAULT_SINCE, "limit": DEFAULT_LIMIT},
        required=("agent_id",),
        read_only=True,
        idempotent=True,
        configured=("agent_id",),
    ),
    ToolSpec(
        "memtrace_search",
        "Search memories",
        "Search memories with structured filters: by keywords (query: ranked, best match "
        "first), content text (content_contains: a substring), memory types, event types, "
        "tags, importance, session and time range. Searches every agent's memories in the org "
        "unless agent_id is given, and all time unless since is given. Without query the "
        "newest come first. Each line shows [id] time type/event_type (agent; session; tags): "
        "content.",
        "searchMemories",
        _search,
        SearchResult,
        docs={
            "query": "Keywords to rank by (e.g. 'refund policy customer 42'); plain words",
            "agent_id": "Only this agent's memories (an id or a registered agent's name)",
            "content_contains": "Search text within memory content (case-insensitive substring)",
            "memory_types": "Filter by memory types (episodic, decision, entity, session)",
            "tags": "Filter by tags (every tag must match)",
            "min_importance": "Minimum importance score 0.0 to 1.0",
            "limit": "Max results (at most 1000)",
        },
        defaults={"limit": DEFAULT_LIMIT},
        read_only=True,
        idempotent=True,
    ),
    ToolSpec(
        "memtrace_decide",
        "Record a decision",
        "Log a decision with reasoning. Creates an auditable record of what was decided and "
        "why (memory_type and event_type 'decision'; the reasoning is kept in "
        "metadata.reasoning).",
        "createMemories",
        _decide,
        Memory,
        body=MemoryCreate,
        exclude={
            "content": "the decision is the content",
            "memory_type": "always 'decision'",
            "event_type": "always 'decision'",
        },
        docs=_MEMORY_FIELDS,
        extra=(
            Argument("decision", {"type": "string"}, "The decision that was made", True),
            Argument("reasoning", {"type": "string"}, "Why this decision was made", True),
        ),
        configured=("agent_id", "session_id"),
    ),
    ToolSpec(
        "memtrace_session_create",
        "Start a session",
        "Start a new session — a bounded context for a unit of work. Memories can be scoped to "
        "sessions by passing the returned session_id.",
        "createSession",
        _session_create,
        Session,
        docs={
            "agent_id": "Agent ID that owns this session",
            "metadata": "Arbitrary key-value metadata",
        },
        configured=("agent_id",),
    ),
    ToolSpec(
        "memtrace_session_context",
        "Session context",
        "Get LLM-ready session context as formatted markdown: the session's memories grouped "
        "by type (decisions, errors, actions), newest kept first within max_tokens. Covers the "
        "last 24 hours unless since is given. Returns the markdown itself, ready to inject "
        "into a prompt.",
        "getSessionContext",
        _session_context,
        SessionContext,
        docs={
            "session_id": "Session ID",
            "since": "Time window (e.g. 4h, 7d) or an RFC 3339 time. Default: 24h",
            "include_types": "Memory types to include (episodic, decision, entity, session)",
            "max_tokens": "Approximate max token budget for context",
        },
        configured=("session_id",),
    ),
    ToolSpec(
        "memtrace_agent_register",
        "Register an agent",
        "Register an agent with a name and description. Optional: memories may use any "
        "agent_id without registering. A registered agent gets an id (agent_…) distinct from "
        "its name; the id works as agent_id afterwards, and so does the name when it is a "
        "valid id (a letter, then letters, digits, '_' or '-'). Names are unique per org.",
        "registerAgent",
        _agent_register,
        Agent,
        docs={
            "name": "Agent name (unique in the org; not the agent id, which is generated)",
            "description": "What this agent does",
            "config": "Arbitrary configuration (a JSON object)",
        },
    ),
    ToolSpec(
        "memtrace_forget",
        "Forget memories",
        "Permanently delete memories: one by memory_id (the id in brackets from recall or "
        "search; a current memory goes with its earlier versions, an earlier version alone), "
        "or every memory matching the filters (agent_id, session_id, tags, memory_types, "
        "since, …; all must hold; a time range alone is refused). Without agent_id the "
        "filters match every agent's memories in the org; a metadata $ne / $nin condition "
        "also matches memories that lack the key. Returns the number deleted.",
        "deleteMemories",
        _forget,
        DeleteResult,
        exclude={"all_memories": "an assistant does not wipe the whole org (use the REST API)"},
        extra=(
            Argument(
                "memory_id",
                {"type": "string", "pattern": r"^mem_[0-9A-HJKMNP-TV-Z]{26}$"},
                "ID of the memory to delete (e.g. mem_01J…)",
            ),
        ),
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        "memtrace_session_close",
        "Close a session",
        "Close a session (its memories stay). Optionally merge metadata into it.",
        "updateSession",
        _session_close,
        Session,
        exclude={"status": "always 'closed'"},
        docs={"session_id": "Session ID"},
        idempotent=True,
        configured=("session_id",),
    ),
    ToolSpec(
        "memtrace_sessions_list",
        "List sessions",
        "List sessions, newest first: of one agent and/or one status (active, closed), or all "
        "of the org's.",
        "listSessions",
        _sessions_list,
        SessionList,
        docs={"agent_id": "Only this agent's sessions"},
        read_only=True,
        idempotent=True,
    ),
    ToolSpec(
        "memtrace_agent_stats",
        "Agent statistics",
        "Counts for an agent: memories (total, last 24 hours, errors in the last 24 hours), "
        "by memory type, sessions (total and active) and when it was last active.",
        "getAgentStats",
        _agent_stats,
        AgentStats,
        docs={"agent_id": "Agent ID (an id or a registered agent's name)"},
        read_only=True,
        idempotent=True,
        configured=("agent_id",),
    ),
)


# -- the reference in docs/mcp.md -------------------------------------------------------------


def reference_markdown() -> str:
    """The tool reference of docs/mcp.md (a test checks the file holds exactly this): each
    tool's description, its REST operation and permission, and its arguments with their types,
    as an MCP client without configured defaults sees them."""
    import html

    from ..openapi import type_text

    out: list[str] = []
    for spec in TOOLS:
        op = spec.operation
        hints = [
            h for h, on in (("read-only", spec.read_only), ("destructive", spec.destructive)) if on
        ]
        out.append(f"### `{spec.name}` — {spec.title}\n")
        out.append(f"{spec.description}\n")
        out.append(
            f"REST: `{op.method} {op.path}` (`{op.op_id}`), permission `{spec.permission}`"
            + (f"; {', '.join(hints)}" if hints else "")
            + f". Structured result: `{spec.output.__name__}`.\n"
        )
        for arg in arguments(spec, Defaults()):
            req = "required" if arg.required else "optional"
            configured = (
                f"; default from `--{arg.name.replace('_', '-')}` when configured"
                if arg.name in spec.configured
                else ""
            )
            out.append(
                f"- `{arg.name}` ({html.unescape(type_text(arg.schema))}, {req}{configured}): "
                f"{arg.description.rstrip('.')}."
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


REFERENCE_BEGIN = "<!-- tools:begin -->"
REFERENCE_END = "<!-- tools:end -->"


def with_reference(text: str) -> str:
    """``text`` (docs/mcp.md) with :func:`reference_markdown` between its markers."""
    head, _, rest = text.partition(REFERENCE_BEGIN)
    _, _, tail = rest.partition(REFERENCE_END)
    return f"{head}{REFERENCE_BEGIN}\n\n{reference_markdown()}\n{REFERENCE_END}{tail}"


def write_reference(path: str) -> None:
    """Regenerate the tool reference in the markdown file at ``path``."""
    from pathlib import Path

    file = Path(path)
    file.write_text(with_reference(file.read_text()))
