"""Export that cannot lie: the export ends with a trailer (counts of what was emitted) and an
import verifies it before anything from the file is kept (issue 7)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtrace_core import (
    AsyncMemtrace,
    DuplicateMemoryError,
    Memtrace,
    PluginRegistry,
    ValidationError,
    connect,
)
from memtrace_core.engine import EXPORT_FORMAT, EXPORT_VERSION


def _trailer(line: str) -> dict[str, object]:
    data = json.loads(line)
    assert data["kind"] == "trailer"
    return dict(data)


async def _seed(engine: AsyncMemtrace) -> None:
    agent = await engine.register_agent(name="exporter")
    await engine.create_session(agent_id=agent.id)
    await engine.create_session(agent_id=agent.id)
    await engine.add_memories(
        [
            {"agent_id": "exporter", "content": f"line {i}", "memory_type": "episodic"}
            for i in range(7)
        ]
    )


async def _snapshot(engine: AsyncMemtrace) -> tuple[int, int, int]:
    return (
        (await engine.list_memories(limit=1000, since="100w")).count,
        (await engine.list_agents()).count,
        (await engine.list_sessions(limit=1000)).count,
    )


async def test_export_ends_with_a_trailer_counting_what_was_emitted(engine: AsyncMemtrace) -> None:
    await _seed(engine)
    lines = [line async for line in engine.iter_export()]
    trailer = _trailer(lines[-1])
    assert trailer == {
        "kind": "trailer",
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "memories": 7,
        "agents": 1,
        "sessions": 2,
    }
    assert [json.loads(line)["kind"] for line in lines[:-1]].count("memory") == 7
    # A filtered export holds memories only, and its trailer says so.
    subset = [line async for line in engine.iter_export(agent_id="nobody")]
    assert [json.loads(line) for line in subset] == [
        {**trailer, "memories": 0, "agents": 0, "sessions": 0}
    ]


async def test_export_jsonl_writes_the_trailer_too(engine: AsyncMemtrace) -> None:
    await _seed(engine)
    buf = io.StringIO()
    written = await engine.export_jsonl(buf)
    lines = buf.getvalue().splitlines()
    assert written == len(lines) == 1 + 2 + 7 + 1
    assert _trailer(lines[-1])["memories"] == 7


async def test_a_file_without_trailer_is_refused_whole(
    engine: AsyncMemtrace, tmp_path: Path, registry: PluginRegistry
) -> None:
    await _seed(engine)
    lines = [line async for line in engine.iter_export()]
    target = connect(f"sqlite:///{tmp_path / 'target.db'}", plugins=registry)
    try:
        with pytest.raises(ValidationError) as info:
            target.import_jsonl(lines[:-1])
        assert "no export trailer" in info.value.message
        assert "require_trailer=False" in info.value.message
        assert info.value.field == "trailer"
        # Nothing of the file was kept: not the agent, the sessions or the memories before it.
        assert target.list_agents().count == 0
        assert target.list_sessions().count == 0
        assert target.list_memories(since="100w").count == 0
        # Explicitly accepted (a file written before the trailer existed).
        result = target.import_jsonl(lines[:-1], require_trailer=False)
        assert (result.imported, result.agents, result.sessions) == (7, 1, 2)
    finally:
        target.close()


async def test_a_miscounted_trailer_is_refused_whole(engine: AsyncMemtrace) -> None:
    await _seed(engine)
    lines = [line async for line in engine.iter_export()]
    await engine.purge_org()
    trailer = _trailer(lines[-1])
    dropped = [line for line in lines[:-1] if '"line 3"' not in line]
    for body in (
        [*dropped, lines[-1]],  # a memory line lost in the middle
        [*lines[:-1], json.dumps({**trailer, "sessions": 3})],
        [*lines[:-1], json.dumps({**trailer, "agents": 0})],
    ):
        with pytest.raises(ValidationError) as info:
            await engine.import_jsonl(body)
        assert "does not match" in info.value.message, info.value.message
        assert await _snapshot(engine) == (0, 0, 0)
        # The flag only lifts the requirement of a trailer: a wrong one is still refused.
        with pytest.raises(ValidationError):
            await engine.import_jsonl(body, require_trailer=False)
        assert await _snapshot(engine) == (0, 0, 0)


async def test_lines_after_the_trailer_are_refused(engine: AsyncMemtrace) -> None:
    await _seed(engine)
    lines = [line async for line in engine.iter_export()]
    await engine.purge_org()
    for extra in (lines[1], lines[-1]):  # data, or a second trailer (two files concatenated)
        with pytest.raises(ValidationError) as info:
            await engine.import_jsonl([*lines, extra])
        assert info.value.message.startswith(f"line {len(lines) + 1}: ")
        assert "after the export trailer" in info.value.message
        assert await _snapshot(engine) == (0, 0, 0)
    # Blank lines after the trailer are harmless (a trailing newline, an editor's habit).
    assert (await engine.import_jsonl([*lines, "", "\n"])).imported == 7


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"format": "something-else"}, "format"),
        ({"version": 99}, "newer"),
        ({"memories": -1}, "memories"),
        ({"memories": True}, "memories"),
        ({"agents": "1"}, "agents"),
    ],
)
async def test_a_malformed_trailer_is_refused(
    engine: AsyncMemtrace, change: dict[str, object], needle: str
) -> None:
    await _seed(engine)
    lines = [line async for line in engine.iter_export()]
    await engine.purge_org()
    with pytest.raises(ValidationError) as info:
        await engine.import_jsonl([*lines[:-1], json.dumps({**_trailer(lines[-1]), **change})])
    assert needle in info.value.message
    assert await _snapshot(engine) == (0, 0, 0)


async def test_a_big_import_is_staged_on_disk_not_in_memory(
    engine: AsyncMemtrace, tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The staging file spills to disk past its memory budget (shrunk here to a few lines) and
    the import is still whole and exact."""
    import tempfile

    from memtrace_core import engine as engine_module

    await engine.add_memories(
        [{"agent_id": "bulk", "content": f"staged memory number {i}"} for i in range(60)]
    )
    lines = [line async for line in engine.iter_export()]
    files: list[tempfile.SpooledTemporaryFile[bytes]] = []
    original = tempfile.SpooledTemporaryFile

    def spooled(max_size: int) -> tempfile.SpooledTemporaryFile[bytes]:
        handle: tempfile.SpooledTemporaryFile[bytes] = original(max_size=max_size)
        files.append(handle)
        return handle

    monkeypatch.setattr(engine_module._Staging, "MEMORY_BYTES", 2048)
    monkeypatch.setattr(engine_module._Staging, "BATCH", 7)
    monkeypatch.setattr(engine_module.tempfile, "SpooledTemporaryFile", spooled)
    target = connect(f"sqlite:///{tmp_path / 'target.db'}", plugins=registry)
    try:
        result = target.import_jsonl(lines, batch_size=11)
        assert result.imported == 60
        assert files
        assert files[0]._rolled  # type: ignore[attr-defined]  # it went to disk
        assert list(target.iter_export()) == lines
    finally:
        target.close()


async def test_imported_memory_without_dedup_key_gets_the_engines_key(
    engine: AsyncMemtrace,
) -> None:
    """Regression (issue 7, small ones): a line without ``dedup_key`` was stored with none, so a
    later identical write was not caught as a duplicate."""
    now = datetime.now(UTC)
    line = {
        "kind": "memory",
        "id": "mem_01HQ00000000000000000000AB",
        "agent_id": "agent_1",
        "event_type": "general",
        "content": "nightly report sent",
        "time": (now - timedelta(minutes=5)).isoformat(),
        "recorded_at": (now - timedelta(minutes=5)).isoformat(),
    }
    result = await engine.import_jsonl([json.dumps(line)], require_trailer=False)
    assert result.imported == 1
    from memtrace_core.validation import dedup_key

    stored = await engine.get_memory(line["id"])
    assert stored.dedup_key == dedup_key("agent_1", "general", "nightly report sent")
    with pytest.raises(DuplicateMemoryError) as info:
        await engine.add_memory(agent_id="agent_1", content="nightly report sent")
    assert info.value.existing_id == line["id"]


# ---------------------------------------------------------------------------------------------
# Properties over random orgs

WORDS = ["deploy", "rollback", "invoice", "customer", "timeout", "ünïcode ✓", 'a"quote']

memories = st.lists(
    st.fixed_dictionaries(
        {
            "agent_id": st.sampled_from(["alpha", "beta"]),
            "session_id": st.sampled_from([None, "sess_one"]),
            "memory_type": st.sampled_from(["episodic", "decision", "entity"]),
            "content": st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
            "tags": st.none() | st.lists(st.sampled_from(["prod", "eu"]), min_size=1, unique=True),
            "metadata": st.none() | st.dictionaries(st.sampled_from(["k", "n"]), st.integers()),
            "time": st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=datetime(2030, 1, 1),
                timezones=st.just(UTC),
            ),
        }
    ),
    max_size=12,
)
org_shape = st.tuples(memories, st.integers(0, 2), st.integers(0, 2))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Memtrace]:
    path = tmp_path_factory.mktemp("export") / "export.db"
    handle = connect(f"sqlite:///{path}", plugins=PluginRegistry(load_entry_points=False))
    yield handle
    handle.close()


def _fill(shared: Memtrace, shape: tuple[list[dict[str, object]], int, int]) -> Memtrace:
    items, n_agents, n_sessions = shape
    org = shared.with_org(f"org_{uuid.uuid4().hex[:12]}")
    for i in range(n_agents):
        org.register_agent(name=f"agent {i}", config={"i": i})
    for i in range(n_sessions):
        org.create_session(agent_id="alpha", metadata={"n": i})
    if items:
        org.add_memories(items)
    return org


def _state(org: Memtrace) -> tuple[object, ...]:
    return (
        [
            m.model_dump(exclude={"org_id"})
            for m in org.list_memories(
                limit=1000, since="1999-01-01T00:00:00Z", order="asc"
            ).memories
        ],
        sorted(a.model_dump_json(exclude={"org_id"}) for a in org.list_agents().agents),
        sorted(
            s.model_dump_json(exclude={"org_id"}) for s in org.list_sessions(limit=1000).sessions
        ),
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shape=org_shape)
def test_round_trip_with_trailer_across_random_orgs(
    shared: Memtrace, shape: tuple[list[dict[str, object]], int, int]
) -> None:
    source = _fill(shared, shape)
    lines = list(source.iter_export())
    trailer = _trailer(lines[-1])
    stored = _state(source)
    assert (trailer["memories"], trailer["agents"], trailer["sessions"]) == tuple(
        len(part)
        for part in stored  # type: ignore[arg-type]
    )
    copy = shared.with_org(f"org_{uuid.uuid4().hex[:12]}")
    result = copy.import_jsonl(lines)
    assert (result.imported, result.agents, result.sessions) == (
        trailer["memories"],
        trailer["agents"],
        trailer["sessions"],
    )
    assert _state(copy) == stored
    assert list(copy.iter_export()) == lines


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shape=org_shape, data=st.data())
def test_any_truncation_of_an_export_is_refused_whole(
    shared: Memtrace, shape: tuple[list[dict[str, object]], int, int], data: st.DataObject
) -> None:
    text = "".join(_fill(shared, shape).iter_export())
    # Any cut that loses at least one character of content (not just the final newline).
    cut = data.draw(st.integers(0, len(text.rstrip("\n")) - 1), label="cut")
    target = shared.with_org(f"org_{uuid.uuid4().hex[:12]}")
    with pytest.raises(ValidationError):
        target.import_jsonl(io.StringIO(text[:cut]))
    assert _state(target) == ([], [], [])
