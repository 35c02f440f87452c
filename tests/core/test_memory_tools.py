"""memtrace_core.memory_tools: the six framework-neutral memory tools, driven with ``drive`` /
``drive_async`` on a real SQLite file — outputs, documented defaults, duplicates, forget's
refusals, this_session_only without a session — and the names, descriptions and argument
schemas every integration shows a model."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError as PydanticError

from memtrace_core import Memtrace, PluginRegistry, aconnect
from memtrace_core.bridge import MemtraceHandle
from memtrace_core.errors import NotFoundError, ValidationError
from memtrace_core.integration import Scope, drive, drive_async
from memtrace_core.memory_tools import (
    DEFAULT_EVENT_TYPE,
    DEFAULT_MEMORY_TYPE,
    DEFAULT_RECALL_LIMIT,
    DEFAULT_SEARCH_LIMIT,
    DEFAULT_SINCE,
    TOOL_KINDS,
    ToolFailure,
    ToolSet,
)

TOOLS = ToolSet()  # the memtrace_ prefix
BOT = Scope(agent_id="bot", session_id="s1")
NO_SESSION = Scope(agent_id="bot", session_id=None)


@pytest.fixture
def handle(mt: Memtrace) -> MemtraceHandle:
    """The tools' handle over ``mt`` (conftest: ``connect`` on a SQLite file in tmp_path)."""
    return MemtraceHandle(mt)


def first_id(text: str) -> str:
    found = re.search(r"mem_[0-9A-Z]{26}", text)
    assert found, text
    return found.group(0)


# -- names, descriptions, arguments ---------------------------------------------------------


def test_names_follow_the_prefix_in_the_canonical_order() -> None:
    assert TOOL_KINDS == ("remember", "recall", "search", "decide", "session_context", "forget")
    assert TOOLS.names == tuple(f"memtrace_{kind}" for kind in TOOL_KINDS)
    assert ToolSet(prefix="").names == TOOL_KINDS
    assert ToolSet(prefix="crew_").name("forget") == "crew_forget"
    with pytest.raises(ValueError, match="unknown memtrace tool kind 'remmber'"):
        TOOLS.name("remmber")


def test_kinds_accept_kinds_or_names_keep_the_order_and_refuse_unknown_ones() -> None:
    assert TOOLS.kinds() == TOOL_KINDS
    assert TOOLS.kinds(["memtrace_forget", "recall"]) == ("recall", "forget")
    assert ToolSet(prefix="").kinds(["search", "remember", "search"]) == ("remember", "search")
    with pytest.raises(ValueError, match=r"unknown memtrace tool\(s\) \['bogus'\]") as info:
        TOOLS.kinds(["recall", "bogus"])
    assert "memtrace_remember, memtrace_recall" in str(info.value)
    with pytest.raises(ValueError, match="'memtrace_recall'"):
        ToolSet(prefix="").kinds(["memtrace_recall"])  # another prefix's name is not a name here
    with pytest.raises(TypeError, match="list of tool names"):
        TOOLS.kinds("recall")


@pytest.mark.parametrize("prefix", ["", "memtrace_"])
def test_descriptions_and_argument_docs_name_the_prefixed_tools(prefix: str) -> None:
    tools = ToolSet(prefix=prefix)
    forget = tools.description("forget")
    assert f"(from {prefix}recall or {prefix}search)" in forget
    assert f"Use the {prefix}decide tool for decisions." in tools.arg_doc("remember", "memory_type")
    assert f"by {prefix}recall or {prefix}search" in tools.arg_doc("forget", "memory_id")
    for kind in TOOL_KINDS:
        texts = [tools.description(kind)]
        for arg in tools.arg_names(kind):
            texts += [tools.arg_doc(kind, arg), tools.arg_doc(kind, arg, strict=True)]
        for text in texts:
            assert len(text) > 20, (kind, text)
            assert not re.search(r"[{}]", text), (kind, text)  # every placeholder filled
            if prefix:
                for other in TOOL_KINDS:  # a tool named is always the prefixed name
                    assert not re.search(rf"(?<![\w_]){other} tool", text), (kind, text)
    with pytest.raises(ValueError, match="has no argument 'nope'"):
        tools.arg_doc("recall", "nope")


def test_strict_docs_say_what_null_means_and_schema_docs_only_where_the_default_cannot() -> None:
    assert TOOLS.arg_doc("recall", "since", strict=True).endswith(" null for '24h'.")
    assert TOOLS.arg_doc("recall", "limit", strict=True).endswith(" null for 20.")
    assert TOOLS.arg_doc("search", "limit", strict=True).endswith(" null for 10.")
    assert TOOLS.arg_doc("remember", "event_type", strict=True).endswith(" null for 'general'.")
    assert TOOLS.arg_doc("remember", "memory_type", strict=True).endswith(" null for 'episodic'.")
    # the pydantic schema shows the default itself ...
    assert "24h'." not in TOOLS.arg_doc("recall", "since").split("such as")[-1]
    assert "null" not in TOOLS.arg_doc("recall", "limit")
    # ... but not what a None default means
    assert TOOLS.arg_doc("search", "since").endswith(" Omit to search all of your memories.")
    assert TOOLS.arg_doc("session_context", "since").endswith(" Omit for the last 24 hours.")
    # required arguments have no default to explain
    assert TOOLS.arg_doc("search", "query") == TOOLS.arg_doc("search", "query", strict=True)


def test_args_schemas_are_the_bodies_keyword_arguments_with_the_documented_defaults() -> None:
    required = {
        "remember": {"content"},
        "recall": set(),
        "search": {"query"},
        "decide": {"decision", "reasoning"},
        "session_context": set(),
        "forget": {"memory_id"},
    }
    for kind in TOOL_KINDS:
        schema = TOOLS.args_schema(kind)
        assert schema is TOOLS.args_schema(kind)  # cached
        assert schema.__name__ == "".join(p.capitalize() for p in kind.split("_")) + "Args"
        fields = schema.model_fields
        assert tuple(fields) == TOOLS.arg_names(kind)
        assert {n for n, f in fields.items() if f.is_required()} == required[kind]
        for name, field in fields.items():
            assert field.description == TOOLS.arg_doc(kind, name)
        body = inspect.signature(getattr(TOOLS, kind)).parameters
        assert list(body)[1:] == list(fields)  # scope, then the arguments in schema order
    recall = TOOLS.args_schema("recall")().model_dump()
    assert recall["since"] == DEFAULT_SINCE
    assert recall["limit"] == DEFAULT_RECALL_LIMIT
    assert recall["this_session_only"] is False
    assert TOOLS.args_schema("search")(query="x").model_dump()["limit"] == DEFAULT_SEARCH_LIMIT
    remember = TOOLS.args_schema("remember")(content="x").model_dump()
    assert (remember["event_type"], remember["memory_type"]) == (
        DEFAULT_EVENT_TYPE,
        DEFAULT_MEMORY_TYPE,
    )
    with pytest.raises(PydanticError):  # decisions go through decide
        TOOLS.args_schema("remember")(content="x", memory_type="decision")
    # one model per prefix: the descriptions differ
    bare = ToolSet(prefix="").args_schema("forget")
    assert bare is not TOOLS.args_schema("forget")
    assert "by recall or search" in str(bare.model_fields["memory_id"].description)
    assert ToolSet(prefix="", context_max_tokens=5).args_schema("forget") is bare


# -- the bodies ----------------------------------------------------------------------------------


def test_remember_with_defaults_and_a_duplicate(handle: MemtraceHandle, mt: Memtrace) -> None:
    out = drive(handle, TOOLS.remember(BOT, "Office closes at 6pm"))
    assert re.fullmatch(r"Remembered as mem_[0-9A-Z]{26} \(episodic/general\)\.", out), out
    stored = mt.get_memory(first_id(out))
    assert (stored.agent_id, stored.session_id, stored.memory_type, stored.event_type) == (
        "bot",
        "s1",
        "episodic",
        "general",
    )
    assert not stored.tags
    assert stored.importance is None
    again = drive(handle, TOOLS.remember(BOT, "Office closes at 6pm", event_type=None))
    assert again == (
        f"Already remembered as {stored.id}: the same content is stored already; nothing new "
        "was written."
    )
    typed = drive(
        handle,
        TOOLS.remember(
            NO_SESSION,
            "Alice is the on-call lead",
            event_type="team_fact",
            memory_type="entity",
            tags=["team"],
            importance=0.7,
        ),
    )
    assert typed.endswith("(entity/team_fact).")
    fact = mt.get_memory(first_id(typed))
    assert (fact.session_id, fact.tags, fact.importance) == (None, ["team"], 0.7)


def test_recall_defaults_window_limit_and_lines(handle: MemtraceHandle, mt: Memtrace) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    mt.add_memory(agent_id="bot", content="three days ago", time=old)
    for i in range(DEFAULT_RECALL_LIMIT + 1):
        mt.remember("bot", f"step {i}", session_id="s1", tags=["t"] if i == 0 else None)
    mt.remember("other", "not mine")
    out = drive(handle, TOOLS.recall(BOT))
    head, *lines = out.splitlines()
    assert head == (
        f"{DEFAULT_RECALL_LIMIT} memories since 24h, newest first: More exist: narrow since or "
        "raise limit."
    )
    assert len(lines) == DEFAULT_RECALL_LIMIT
    assert re.fullmatch(
        rf"- \[mem_\w{{26}}\] \S+Z episodic/general \(session s1\): step {DEFAULT_RECALL_LIMIT}",
        lines[0],
    ), lines[0]
    assert "not mine" not in out
    assert "three days ago" not in out
    week = drive(handle, TOOLS.recall(BOT, since="7d", limit=50))
    assert week.startswith(f"{DEFAULT_RECALL_LIMIT + 2} memories since 7d, newest first:\n")
    assert week.splitlines()[-1].endswith("episodic/general: three days ago")  # no session
    tagged = drive(handle, TOOLS.recall(BOT, tags=["t"]))
    assert tagged.startswith("1 memory since 24h")
    assert tagged.endswith("tags: t): step 0")
    assert drive(handle, TOOLS.recall(BOT, event_type="error")) == "No memories since 24h."
    assert drive(handle, TOOLS.recall(BOT, memory_type="decision", since="1h")) == (
        "No memories since 1h."
    )


def test_recall_this_session_only(handle: MemtraceHandle, mt: Memtrace) -> None:
    mt.remember("bot", "in s1", session_id="s1")
    mt.remember("bot", "in s2", session_id="s2")
    mine = drive(handle, TOOLS.recall(BOT, this_session_only=True))
    assert mine.startswith("1 memory in session s1 since 24h, newest first:")
    assert "in s2" not in mine
    assert "2 memories since 24h" in drive(handle, TOOLS.recall(BOT, this_session_only=None))
    empty = drive(handle, TOOLS.recall(Scope("bot", "s9"), this_session_only=True))
    assert empty == "No memories in session s9 since 24h."
    for tools in (TOOLS, ToolSet(prefix="")):
        # no session: an answer naming this tool set's recall, and no memtrace call at all
        program = tools.recall(NO_SESSION, this_session_only=True)
        with pytest.raises(StopIteration) as stop:
            next(program)
        assert stop.value.value == (
            f"There is no current session: call {tools.name('recall')} with "
            "this_session_only=false."
        )


def test_search_defaults_to_every_memory_and_ten_results(
    handle: MemtraceHandle, mt: Memtrace
) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    old_one = mt.add_memory(agent_id="bot", content="the printer on floor three jammed", time=old)
    for i in range(DEFAULT_SEARCH_LIMIT + 2):
        mt.remember("bot", f"vpn note {i}")
    mt.remember("other", "vpn of another agent")
    found = drive(handle, TOOLS.search(BOT, "vpn"))
    head, *lines = found.splitlines()
    assert head == f"{DEFAULT_SEARCH_LIMIT} memories match 'vpn', best first:"
    assert len(lines) == DEFAULT_SEARCH_LIMIT
    assert "another agent" not in found
    printer = drive(handle, TOOLS.search(BOT, "printer"))  # a month old: found, no window
    assert printer.startswith("1 memory match 'printer', best first:\n- [" + old_one.id)
    assert old_one.id not in drive(handle, TOOLS.search(BOT, "printer", since="7d"))
    assert len(drive(handle, TOOLS.search(BOT, "vpn", limit=3)).splitlines()) == 4
    assert drive(handle, TOOLS.search(BOT, "kangaroo")) == (
        "No memories match 'kangaroo'. Try fewer or other keywords."
    )
    assert drive(handle, TOOLS.search(BOT, "vpn", memory_type="decision")).startswith("No memories")


def test_decide_and_its_duplicate(handle: MemtraceHandle, mt: Memtrace) -> None:
    out = drive(handle, TOOLS.decide(BOT, "Escalate ticket 42", "SLA breached", tags=["sla"]))
    assert re.fullmatch(r"Decision recorded as mem_[0-9A-Z]{26}\.", out), out
    memory = mt.get_memory(first_id(out))
    assert (memory.memory_type, memory.session_id, memory.tags) == ("decision", "s1", ["sla"])
    assert memory.metadata == {"reasoning": "SLA breached"}
    again = drive(handle, TOOLS.decide(BOT, "Escalate ticket 42", "SLA breached"))
    assert again == f"Decision already recorded as {memory.id}; nothing new was written."
    line = drive(handle, TOOLS.recall(BOT, memory_type="decision")).splitlines()[1]
    assert line.endswith(
        "decision/decision (session s1; tags: sla): Escalate ticket 42 — reasoning: SLA breached"
    )


def test_session_context_budget_and_fallback(handle: MemtraceHandle, mt: Memtrace) -> None:
    assert drive(handle, TOOLS.session_context(BOT)) == "No memories yet for this session or agent."
    for i in range(30):
        mt.remember("bot", f"step {i} of a long task with some detail", session_id="s1")
    engine_default = drive(handle, TOOLS.session_context(BOT))
    assert engine_default == mt.get_session_context("s1").context
    budget = ToolSet(context_max_tokens=60)
    small = drive(handle, budget.session_context(BOT))
    assert small == mt.get_session_context("s1", max_tokens=60).context
    assert len(small) < len(engine_default)
    wider = drive(handle, budget.session_context(BOT, max_tokens=100_000))  # the model's wins
    assert wider == mt.get_session_context("s1", max_tokens=100_000).context
    assert len(wider) > len(small)
    # a session with nothing yet, or no session: the agent's context across sessions
    fresh = drive(handle, TOOLS.session_context(Scope("bot", "s-new")))
    assert fresh.startswith("## Agent Context (bot)")
    assert drive(handle, TOOLS.session_context(NO_SESSION)) == fresh
    with pytest.raises(ValidationError):
        drive(handle, TOOLS.session_context(BOT, since="soon"))


def test_forget_own_memory_and_refusals(handle: MemtraceHandle, mt: Memtrace) -> None:
    keep = mt.remember("bot", "keep me")
    gone = mt.remember("bot", "wrong fact " + "x" * 100)
    assert drive(handle, TOOLS.forget(BOT, gone.id)) == f"Forgot {gone.id}: {gone.content[:80]}"
    with pytest.raises(NotFoundError):
        mt.get_memory(gone.id)
    assert gone.id not in drive(handle, TOOLS.search(BOT, "wrong fact"))
    with pytest.raises(ToolFailure) as unknown:
        drive(handle, TOOLS.forget(BOT, gone.id))
    assert str(unknown.value) == (
        f"memtrace_forget failed: no memory {gone.id!r} (wrong id, or already forgotten). Use "
        "memtrace_recall or memtrace_search to find the id."
    )
    with pytest.raises(ToolFailure, match=r"^forget failed: invalid memory id.*by recall\.$"):
        drive(handle, ToolSet(prefix="").forget(BOT, "not-an-id"))
    theirs = mt.remember("other-bot", "their secret")
    with pytest.raises(ToolFailure) as refused:
        drive(handle, TOOLS.forget(BOT, theirs.id))
    assert str(refused.value) == (
        f"memtrace_forget refused: memory {theirs.id} belongs to another agent; you can only "
        "forget your own memories."
    )
    assert mt.get_memory(theirs.id).content == "their secret"
    assert mt.get_memory(keep.id).content == "keep me"


def test_forget_accepts_the_registered_agents_id_or_name(
    handle: MemtraceHandle, mt: Memtrace
) -> None:
    agent = mt.register_agent("named-bot")
    by_name = mt.remember("named-bot", "written by name")
    assert drive(handle, TOOLS.forget(Scope(agent.id, None), by_name.id)).startswith("Forgot")
    with pytest.raises(NotFoundError):
        mt.get_memory(by_name.id)


# -- run / arun: every failure worded for the model ---------------------------------------------


def test_run_words_memtrace_errors_for_the_model_with_the_tool_name(
    handle: MemtraceHandle,
) -> None:
    args: dict[str, Any] = {"content": "x", "importance": 5}
    with pytest.raises(ValidationError):  # the program itself lets it propagate
        drive(handle, TOOLS.program("remember", BOT, args))
    with pytest.raises(ToolFailure) as failure:
        TOOLS.run(handle, "remember", BOT, args)
    assert str(failure.value).startswith(
        "memtrace_remember failed: invalid input (argument importance)"
    )
    assert str(failure.value).endswith("Fix the arguments and call memtrace_remember again.")
    with pytest.raises(ToolFailure, match=r"^recall failed: invalid input \(argument since\)"):
        ToolSet(prefix="").run(handle, "recall", BOT, {"since": "yesterday-ish"})
    with pytest.raises(TypeError):  # an argument the body does not have is a programming error
        TOOLS.run(handle, "recall", BOT, {"bogus": 1})


def test_run_takes_a_schemas_model_dump(handle: MemtraceHandle, mt: Memtrace) -> None:
    for kind, raw in [
        ("remember", {"content": "via the schema", "tags": ["a"]}),
        ("recall", {}),
        ("search", {"query": "schema"}),
        ("decide", {"decision": "d", "reasoning": "r"}),
        ("session_context", {}),
    ]:
        args = TOOLS.args_schema(kind).model_validate(raw).model_dump()
        assert TOOLS.run(handle, kind, BOT, args), kind
    memory = mt.recall("bot", "1h", event_type="general").memories[0]
    assert (memory.content, memory.tags) == ("via the schema", ["a"])
    assert TOOLS.run(handle, "forget", BOT, {"memory_id": memory.id}).startswith("Forgot")


@pytest.fixture
async def async_handle(db_url: str, registry: PluginRegistry) -> AsyncIterator[MemtraceHandle]:
    api = await aconnect(db_url, plugins=registry)
    try:
        yield MemtraceHandle(api)
    finally:
        await api.close()


async def test_arun_and_drive_async_on_an_async_only_handle(async_handle: MemtraceHandle) -> None:
    out = await TOOLS.arun(async_handle, "remember", BOT, {"content": "async fact"})
    memory_id = first_id(out)
    dup = await drive_async(async_handle, TOOLS.remember(BOT, "async fact"))
    assert dup.startswith(f"Already remembered as {memory_id}")
    recalled = await TOOLS.arun(async_handle, "recall", BOT, {"this_session_only": True})
    assert recalled.endswith(": async fact")
    with pytest.raises(ToolFailure, match="belongs to another agent"):
        await TOOLS.arun(
            async_handle, "forget", Scope("someone-else", None), {"memory_id": memory_id}
        )
    with pytest.raises(ToolFailure, match="memtrace_search failed: invalid input"):
        await TOOLS.arun(async_handle, "search", BOT, {"query": "x", "since": "soon"})
    assert (await TOOLS.arun(async_handle, "forget", BOT, {"memory_id": memory_id})).startswith(
        "Forgot"
    )
    with pytest.raises(TypeError, match="async-only"):
        TOOLS.run(async_handle, "recall", BOT, {})


def test_a_namespaced_tool_set_writes_into_its_namespace_and_reads_the_agent(
    handle: MemtraceHandle, mt: Memtrace
) -> None:
    tools = ToolSet(namespace=("crewai", "team"))
    plain = drive(handle, TOOLS.remember(BOT, "written without a namespace"))
    kept = drive(handle, tools.remember(BOT, "written in the namespace", tags=["t"]))
    decided = drive(handle, tools.decide(BOT, "Ship on Monday", "tests are green"))
    note = mt.get_memory(first_id(kept))
    assert (note.namespace, note.session_id, note.tags) == (["crewai", "team"], "s1", ["t"])
    decision = mt.get_memory(first_id(decided))
    assert decision.namespace == ["crewai", "team"]
    assert (decision.memory_type, decision.event_type) == ("decision", "decision")
    assert decision.metadata == {"reasoning": "tests are green"}
    assert mt.get_memory(first_id(plain)).namespace is None
    # duplicates are still answers, reads still see the agent's memories everywhere
    again = drive(handle, tools.remember(BOT, "written in the namespace", tags=["t"]))
    assert again.startswith(f"Already remembered as {note.id}")
    assert drive(handle, tools.recall(BOT)).startswith("3 memories")
