"""Validation rules (every field, every message), limits and dedup keys."""

from __future__ import annotations

import hashlib
import json
import re
import string
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from memtrace_core import AsyncMemtrace, EngineConfig, ValidationError, aconnect
from memtrace_core.errors import MemtraceError
from memtrace_core.models import MemoryCreate
from memtrace_core.validation import (
    Limits,
    check_id,
    check_limit,
    check_memory_type,
    check_offset,
    check_order,
    check_tags,
    check_type_name,
    dedup_key,
    validate_memory,
)

ID_MSG = (
    "invalid ID format: must be alphanumeric with underscores/hyphens, max 128 chars, "
    "starting with a letter"
)
TYPE_MSG = "invalid type format: must be alphanumeric with underscores, max 64 chars"
TAG_MSG = "invalid tag format: must be alphanumeric with underscores/hyphens/dots, max 64 chars"

LIMITS = Limits()

# Independent oracles for the documented patterns (written as character sets, not regexes).
LETTERS = string.ascii_letters
DIGITS = string.digits


def is_valid_id(value: str) -> bool:
    allowed = set(LETTERS + DIGITS + "_-")
    return 1 <= len(value) <= 128 and value[0] in LETTERS and all(c in allowed for c in value)


def is_valid_type(value: str) -> bool:
    allowed = set(LETTERS + DIGITS + "_")
    return 1 <= len(value) <= 64 and value[0] in LETTERS and all(c in allowed for c in value)


def is_valid_tag(value: str) -> bool:
    allowed = set(LETTERS + DIGITS + "_.-")
    return 1 <= len(value) <= 64 and all(c in allowed for c in value)


def mem(**fields: Any) -> dict[str, Any]:
    return {"agent_id": "agent_1", "content": "hello", **fields}


def invalid(data: Any, *, limits: Limits = LIMITS, index: int | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validate_memory(data, limits, index=index)
    return info.value


# ---------------------------------------------------------------------------------------------
# Field rules and their exact messages


def test_valid_memory_is_normalised() -> None:
    out = validate_memory(
        mem(memory_type="", event_type="", tags=["a", "b", "a"], session_id="", metadata={}),
        LIMITS,
    )
    assert out.memory_type == "episodic"
    assert out.event_type == "general"
    assert out.tags == ["a", "b"]
    assert out.session_id is None
    assert out.metadata is None


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"content": "x"}, "agent_id", "agent_id is required"),
        (mem(agent_id=""), "agent_id", "agent_id is required"),
        ({"agent_id": "a"}, "content", "content is required"),
        (mem(content=""), "content", "content is required"),
        (mem(agent_id="1abc"), "agent_id", f"invalid agent_id: {ID_MSG}"),
        (mem(agent_id="a b"), "agent_id", f"invalid agent_id: {ID_MSG}"),
        (mem(agent_id="a" * 129), "agent_id", f"invalid agent_id: {ID_MSG}"),
        (mem(session_id="sess x"), "session_id", f"invalid session_id: {ID_MSG}"),
        (mem(session_id="_sess"), "session_id", f"invalid session_id: {ID_MSG}"),
        (mem(event_type="page-crawled"), "event_type", f"invalid event_type: {TYPE_MSG}"),
        (mem(event_type="e" * 65), "event_type", f"invalid event_type: {TYPE_MSG}"),
        (mem(event_type="9lives"), "event_type", f"invalid event_type: {TYPE_MSG}"),
        (mem(tags=["x y"]), "tags", f"invalid tag 'x y': {TAG_MSG}"),
        (mem(tags=["ok", "t" * 65]), "tags", f"invalid tag '{'t' * 65}': {TAG_MSG}"),
        (mem(tags=["a,b"]), "tags", f"invalid tag 'a,b': {TAG_MSG}"),
        (
            mem(memory_type="foo"),
            "memory_type",
            "invalid memory_type: foo (expected one of episodic, session, decision, entity)",
        ),
    ],
)
def test_field_rules_and_messages(data: dict[str, Any], field: str, message: str) -> None:
    err = invalid(data)
    assert err.message == message
    assert err.field == field
    assert err.index is None
    assert err.status_code == 400
    assert err.to_dict() == {"error": message, "field": field}


@pytest.mark.parametrize("value", [-0.01, 1.01, float("nan"), float("inf"), "high"])
def test_importance_outside_0_1_is_rejected(value: Any) -> None:
    err = invalid(mem(importance=value))
    assert err.field == "importance"
    assert err.message.startswith("invalid importance")


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 1, 1.0])
def test_importance_bounds_are_inclusive(value: float) -> None:
    assert validate_memory(mem(importance=value), LIMITS).importance == value


def test_memory_type_enum_accepts_the_four_literals() -> None:
    for value in ("episodic", "session", "decision", "entity"):
        assert validate_memory(mem(memory_type=value), LIMITS).memory_type == value
    assert check_memory_type("entity") == "entity"
    with pytest.raises(ValidationError) as info:
        check_memory_type("Episodic", "include_types")
    assert info.value.field == "include_types"


def test_content_size_limit_default_is_64_kib() -> None:
    limit = 64 * 1024
    assert validate_memory(mem(content="a" * limit), LIMITS).content == "a" * limit
    err = invalid(mem(content="a" * (limit + 1)))
    assert err.field == "content"
    assert err.message == f"content too large: {limit + 1} bytes (max {limit})"
    # Bytes, not characters: 21846 three-byte characters are 65538 bytes.
    err = invalid(mem(content="€" * 21846))
    assert err.message == f"content too large: 65538 bytes (max {limit})"


async def test_content_size_limit_configurable_through_engine_config(db_url: str) -> None:
    config = EngineConfig(limits=Limits(max_content_bytes=10))
    engine: AsyncMemtrace = await aconnect(db_url, config=config)
    try:
        assert (await engine.remember("agent_1", "0123456789")).content == "0123456789"
        with pytest.raises(ValidationError) as info:
            await engine.remember("agent_1", "01234567890")
        assert info.value.field == "content"
        assert "(max 10)" in info.value.message
        with pytest.raises(ValidationError) as info:
            await engine.add_memories([mem(content="short"), mem(content="x" * 11)])
        assert info.value.index == 1
        assert (await engine.list_memories()).count == 1
    finally:
        await engine.close()


def test_metadata_size_limit() -> None:
    limits = Limits(max_metadata_bytes=20)
    assert validate_memory(mem(metadata={"k": "v" * 10}), limits).metadata == {"k": "v" * 10}
    err = invalid(mem(metadata={"k": "v" * 20}), limits=limits)
    assert err.field == "metadata"
    assert err.message == "metadata too large: 28 bytes as JSON (max 20)"
    err = invalid(mem(metadata={"k": float("nan")}))
    assert err.field == "metadata"


def test_tag_count_limit() -> None:
    limits = Limits(max_tags=3)
    assert validate_memory(mem(tags=["a", "b", "a"]), limits).tags == ["a", "b"]
    err = invalid(mem(tags=["a", "b", "c", "d"]), limits=limits)
    assert err.field == "tags"
    assert err.message == "too many tags: 4 (max 3)"
    # counted as sent, before de-duplication: the cost of a request is bounded by the limit
    assert invalid(mem(tags=["a", "b", "c", "a"]), limits=limits).message == (
        "too many tags: 4 (max 3)"
    )
    assert len(validate_memory(mem(tags=[f"t{i}" for i in range(32)]), LIMITS).tags or []) == 32
    assert invalid(mem(tags=[f"t{i}" for i in range(33)])).field == "tags"


def test_nul_and_unencodable_content_are_rejected() -> None:
    assert invalid(mem(content="a\x00b")).field == "content"
    # A lone surrogate (possible from JSON "\ud800") cannot be stored as UTF-8.
    err = invalid(mem(content="bad \ud800 text"))
    assert err.field == "content"


def test_dedup_key_and_parent_id_rules() -> None:
    assert validate_memory(mem(dedup_key="k" * 256), LIMITS).dedup_key == "k" * 256
    assert invalid(mem(dedup_key="k" * 257)).field == "dedup_key"
    assert invalid(mem(dedup_key="a\nb")).field == "dedup_key"
    assert invalid(mem(parent_id="p" * 129)).field == "parent_id"
    assert validate_memory(mem(dedup_key="", parent_id=""), LIMITS).dedup_key is None


def test_wrong_json_types_are_validation_errors() -> None:
    assert invalid(mem(content=5)).field == "content"
    assert invalid(mem(metadata=[1, 2])).field == "metadata"
    assert invalid(mem(tags="a")).field == "tags"
    assert invalid(mem(agent_id=7)).field == "agent_id"
    err = invalid(["not", "an", "object"], index=3)
    assert err.index == 3
    assert err.field == "body"


def test_batch_errors_carry_the_item_index() -> None:
    err = invalid(mem(event_type="bad-type"), index=7)
    assert err.index == 7
    assert err.field == "event_type"
    assert err.message == f"memories[7]: invalid event_type: {TYPE_MSG}"
    assert err.to_dict() == {"error": err.message, "field": "event_type", "index": 7}
    assert isinstance(err, MemtraceError)


async def test_batch_validation_through_the_engine(engine: AsyncMemtrace) -> None:
    with pytest.raises(ValidationError) as info:
        await engine.add_memories([mem(content="one"), mem(content="two"), mem(tags=["x y"])])
    assert info.value.index == 2
    assert info.value.field == "tags"
    assert (await engine.list_memories()).count == 0  # nothing before the bad item was written
    with pytest.raises(ValidationError) as info:
        await engine.add_memories([mem(content="one"), "nope"])  # type: ignore[list-item]
    assert info.value.index == 1
    with pytest.raises(ValidationError) as info:
        await engine.add_memories("not a list")  # type: ignore[arg-type]
    assert info.value.field == "memories"


async def test_batch_size_limit(db_url: str) -> None:
    engine = await aconnect(db_url, config=EngineConfig(limits=Limits(max_batch=3)))
    try:
        ok = await engine.add_memories([mem(content=f"m{i}") for i in range(3)])
        assert ok.count == 3
        with pytest.raises(ValidationError) as info:
            await engine.add_memories([mem(content=f"n{i}") for i in range(4)])
        assert info.value.field == "memories"
        assert info.value.message == "batch too large: 4 memories (max 3)"
        assert (await engine.list_memories()).count == 3
    finally:
        await engine.close()


def test_one_validation_error_type() -> None:
    errors = [
        invalid({"content": "x"}),
        invalid(mem(importance=2)),
        invalid(mem(memory_type="x")),
        invalid(mem(content="x" * 70000)),
    ]
    assert all(type(e) is ValidationError for e in errors)
    assert all(e.field for e in errors)


# ---------------------------------------------------------------------------------------------
# Pattern properties (validation accepts exactly the documented patterns)

id_like = st.one_of(
    st.text(alphabet=LETTERS + DIGITS + "_-", min_size=0, max_size=130),
    st.text(min_size=1, max_size=20),
    st.from_regex(r"[a-zA-Z][a-zA-Z0-9_-]{0,127}", fullmatch=True).map(lambda s: s + "\n"),
)


@settings(max_examples=300, deadline=None)
@given(id_like)
@example("agent_1\n")
@example("a")
@example("a" * 128)
@example("a" * 129)
def test_id_pattern_property(value: str) -> None:
    if value == "":
        assert check_id(value, "agent_id") is None
        return
    if is_valid_id(value):
        assert check_id(value, "agent_id") == value
        assert check_id(value, "session_id") == value
    else:
        with pytest.raises(ValidationError) as info:
            check_id(value, "session_id")
        assert info.value.field == "session_id"
        assert info.value.message == f"invalid session_id: {ID_MSG}"


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=LETTERS + DIGITS + "_-", min_size=1, max_size=66),
        st.text(min_size=1, max_size=10),
    )
)
@example("general\n")
@example("e" * 64)
def test_type_pattern_property(value: str) -> None:
    if is_valid_type(value):
        assert check_type_name(value, "event_type") == value
    else:
        with pytest.raises(ValidationError) as info:
            check_type_name(value, "event_type")
        assert info.value.field == "event_type"


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=LETTERS + DIGITS + "_.-,", min_size=0, max_size=66),
        st.text(min_size=0, max_size=10),
    )
)
@example("prod\n")
@example("")
def test_tag_pattern_property(value: str) -> None:
    if is_valid_tag(value):
        assert check_tags([value]) == [value]
    else:
        with pytest.raises(ValidationError) as info:
            check_tags([value])
        assert info.value.field == "tags"
        shown = f"'{value}'" if value.isprintable() and len(value) <= 80 else None
        if shown is None:  # escaped (and cut), so that the message can always be sent
            shown = repr(value if len(value) <= 80 else value[:80] + "…")
        assert info.value.message == f"invalid tag {shown}: {TAG_MSG}"


def test_paging_parameters() -> None:
    assert check_limit(None) == 100
    assert check_limit(5000) == 1000  # capped, not reset
    assert check_limit("7") == 7
    for bad in (0, -1, "x", True, 1.5):
        with pytest.raises(ValidationError) as info:
            check_limit(bad)
        assert info.value.field == "limit"
    assert check_offset(None) == 0
    assert check_offset("10") == 10
    with pytest.raises(ValidationError):
        check_offset(-1)
    assert check_order(None) == "desc"
    assert check_order("asc") == "asc"
    with pytest.raises(ValidationError) as info:
        check_order("ASC")
    assert info.value.field == "order"


def test_paging_integers_out_of_range() -> None:
    for bad in ("²", "١٢", "1_0"):  # str.isdigit() accepts these; they are not page sizes
        with pytest.raises(ValidationError) as info:
            check_limit(bad)
        assert info.value.field == "limit"
    with pytest.raises(ValidationError) as info:
        check_offset(2**63)  # past what a store's integer can hold
    assert info.value.field == "offset"
    assert check_offset(2**63 - 1) == 2**63 - 1


# ---------------------------------------------------------------------------------------------
# Dedup keys


def test_dedup_key_test_vectors() -> None:
    assert dedup_key("agent_1", "general", "User prefers dark mode") == (
        "e81f1de3b743bacd47421867ad0574e4"
    )
    assert dedup_key(
        "agent_web_crawler", "page_crawled", "Crawled https://example.com — found 3 product pages"
    ) == ("66fc769a407d68f4788e57e2975bff6c")


async def test_engine_uses_the_original_key_with_default_event_type(
    engine: AsyncMemtrace,
) -> None:
    m = await engine.remember("agent_1", "User prefers dark mode")
    assert m.dedup_key == "e81f1de3b743bacd47421867ad0574e4"
    m2 = await engine.add_memory(
        agent_id="agent_web_crawler",
        event_type="page_crawled",
        content="Crawled https://example.com — found 3 product pages",
    )
    assert m2.dedup_key == "66fc769a407d68f4788e57e2975bff6c"
    m3 = await engine.add_memory(agent_id="agent_1", content="explicit", dedup_key="my-key")
    assert m3.dedup_key == "my-key"


def oracle_key(agent_id: str, event_type: str, content: str) -> str:
    raw = f"{agent_id}|{event_type}|".encode() + content.encode("utf-8")[:200]
    return hashlib.sha256(raw).hexdigest()[:32]


NO_NUL = st.characters(codec="utf-8", exclude_characters="\x00")
ids = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_-]{0,20}", fullmatch=True)
types = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,20}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    agent=ids,
    event=types,
    head=st.text(NO_NUL, max_size=120),
    tail1=st.text(NO_NUL, max_size=30),
    tail2=st.text(NO_NUL, max_size=30),
    memory_type=st.sampled_from(["episodic", "session", "decision", "entity"]),
    session=st.none() | ids,
    tags=st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), max_size=3),
)
def test_dedup_key_depends_only_on_agent_event_and_first_200_bytes(
    agent: str,
    event: str,
    head: str,
    tail1: str,
    tail2: str,
    memory_type: str,
    session: str | None,
    tags: list[str],
) -> None:
    content1 = head + tail1
    key = dedup_key(agent, event, content1)
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert key == oracle_key(agent, event, content1)
    # Other fields never enter the key: the engine computes it from these three only.
    validated = validate_memory(
        {
            "agent_id": agent,
            "event_type": event,
            "content": content1 if content1.strip() else "x",
            "memory_type": memory_type,
            "session_id": session,
            "tags": tags or None,
        },
        LIMITS,
    )
    # (validation keeps the three fields as given, so the key of the validated memory is the
    # oracle's key of the input)
    assert dedup_key(validated.agent_id, validated.event_type, validated.content) == oracle_key(
        agent, event, content1 if content1.strip() else "x"
    )
    # Padding the content to exactly 200 bytes: whatever follows does not count.
    prefix = head.encode()[:200].decode("utf-8", errors="ignore")
    padded = prefix + "#" * (200 - len(prefix.encode()))
    assert len(padded.encode()) == 200
    assert dedup_key(agent, event, padded + tail1) == dedup_key(agent, event, padded + tail2)
    # Content that differs within the first 200 bytes gives a different key.
    content2 = head + tail2
    if content1.encode()[:200] != content2.encode()[:200]:
        assert dedup_key(agent, event, content2) != key
    assert dedup_key(agent + "x", event, content1) != key
    assert dedup_key(agent, event + "x", content1) != key


def test_dedup_key_cuts_bytes_not_characters() -> None:
    content = "a" * 199 + "é" + "tail"  # "é" straddles byte 200
    raw = b"agent_1|general|" + ("a" * 199).encode() + "é".encode()[:1]
    assert dedup_key("agent_1", "general", content) == hashlib.sha256(raw).hexdigest()[:32]


async def test_key_ignores_memory_type_session_tags_and_metadata(engine: AsyncMemtrace) -> None:
    first = await engine.remember("agent_1", "same text", memory_type="episodic", session_id="s1")
    with pytest.raises(MemtraceError) as info:
        await engine.remember(
            "agent_1",
            "same text",
            memory_type="entity",
            session_id="s2",
            tags=["x"],
            metadata={"k": 1},
        )
    assert getattr(info.value, "existing_id", None) == first.id
    # A different event type is a different key.
    other = await engine.remember("agent_1", "same text", event_type="other")
    assert other.dedup_key != first.dedup_key


def test_memory_create_model_accepts_sdk_shape() -> None:
    model = MemoryCreate(agent_id="agent_1", content="x", importance=0.3)
    assert validate_memory(model, LIMITS) is model


def test_a_namespaced_memory_is_deduplicated_within_its_namespace_on_its_whole_content(
    tmp_path: Any,
) -> None:
    from memtrace_core import connect
    from memtrace_core.errors import DuplicateMemoryError

    mt = connect(f"sqlite:///{tmp_path / 'ns.db'}")
    try:
        head = "x" * 250
        a = mt.add_memory(agent_id="a", content=head + " one", namespace=["team", "a"])
        # another namespace, or a different tail after 200 shared bytes: another memory
        mt.add_memory(agent_id="a", content=head + " one", namespace=["team", "b"])
        mt.add_memory(agent_id="a", content=head + " two", namespace=["team", "a"])
        with pytest.raises(DuplicateMemoryError) as dup:
            mt.add_memory(agent_id="a", content=head + " one", namespace=["team", "a"])
        assert dup.value.existing_id == a.id
        assert a.dedup_key is not None
        assert a.dedup_key.startswith("n")
        # without a namespace: the original's key (first 200 bytes) as before
        mt.add_memory(agent_id="a", content=head + " one")
        with pytest.raises(DuplicateMemoryError):
            mt.add_memory(agent_id="a", content=head + " two")
    finally:
        mt.close()


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinity included: the strict encoder must refuse them
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(_JSON)
def test_the_shared_encoders_give_json_dumps_text_and_errors(value: object) -> None:
    from memtrace_core import validation

    assert validation.compact_json(value) == json.dumps(
        value, separators=(",", ":"), ensure_ascii=False
    )
    try:
        expected: object = json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError as exc:
        expected = ("ValueError", str(exc))
    try:
        got: object = validation._strict_json(value)
    except ValueError as exc:
        got = ("ValueError", str(exc))
    assert got == expected


def test_the_shared_encoder_refuses_what_json_dumps_refuses() -> None:
    from memtrace_core import validation

    circular: list[object] = []
    circular.append(circular)
    for bad, error in ((object(), TypeError), ({(1, 2): 1}, TypeError), (circular, ValueError)):
        with pytest.raises(error):
            validation.compact_json(bad)
        with pytest.raises(error):
            json.dumps(bad, separators=(",", ":"), ensure_ascii=False)
