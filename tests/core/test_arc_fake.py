"""The Arc fake (tests/arc_fake.py) against the protocol document (shared reference
arc-protocol.md): what the plugin tests rely on must behave like the real servers."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgpack  # type: ignore[import-untyped]
import pytest

from arc_fake import TOKEN, FakeArc, running, shared

T0 = 1_764_011_676_265_000  # µs


def write(
    client: httpx.Client,
    m: str,
    columns: dict[str, list[Any]],
    *,
    db: str | None = "memtrace",
    headers: dict[str, str] | None = None,
    gz: bool = False,
) -> httpx.Response:
    body = msgpack.packb({"m": m, "columns": columns}, use_bin_type=True)
    hdrs = dict(headers or {})
    if db is not None:
        hdrs["x-arc-database"] = db
    if gz:
        body = gzip.compress(body)
    return client.post("/api/v1/write/msgpack", content=body, headers=hdrs)


def query(client: httpx.Client, sql: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post("/api/v1/query", json={"sql": sql}, headers=headers or {})


@pytest.fixture
def go() -> Iterator[tuple[FakeArc, httpx.Client]]:
    with running() as fake, httpx.Client(base_url=fake.url, timeout=5) as client:
        yield fake, client


@pytest.fixture
def py() -> Iterator[tuple[FakeArc, httpx.Client]]:
    with running(version="python") as fake, httpx.Client(base_url=fake.url, timeout=5) as client:
        yield fake, client


def test_write_is_204_and_types_come_from_the_first_value(go: tuple[FakeArc, httpx.Client]) -> None:
    fake, client = go
    r = write(
        client,
        "mem",
        {
            "time": [T0, T0 + 1],
            "score": [1, 0.25],
            "ratio": [0.5, 2],
            "flag": [True, False],
            "empty": [None, None],
        },
    )
    assert r.status_code == 204
    assert r.content == b""
    rows = fake.rows("memtrace", "mem")
    assert [row["score"] for row in rows] == [1, 0]
    assert rows[1]["ratio"] == 2.0
    assert isinstance(rows[1]["ratio"], float)
    assert rows[0]["time"] == T0
    r = query(client, "SELECT typeof(score), typeof(empty), typeof(time) FROM memtrace.mem LIMIT 1")
    assert r.status_code == 200
    assert r.json()["data"] == [["BIGINT", "VARCHAR", "TIMESTAMP WITH TIME ZONE"]]
    assert fake.writes == 1


def test_reply_shape_and_timestamps(go: tuple[FakeArc, httpx.Client]) -> None:
    _, client = go
    write(client, "mem", {"time": [T0], "agent_id": ["a1"], "importance": [0.9]})
    body = query(client, "SELECT time, agent_id, importance FROM memtrace.mem").json()
    assert body["success"] is True
    assert body["columns"] == ["time", "agent_id", "importance"]
    assert body["data"] == [["2025-11-24T19:14:36.265Z", "a1", 0.9]]
    assert body["row_count"] == 1
    assert isinstance(body["execution_time_ms"], int)
    body = query(client, "SELECT 1::HUGEINT AS h, 2.5::DECIMAL(4,2) AS d, 'nan'::DOUBLE AS n")
    assert body.json()["data"] == [["1", 2.5, None]]


def test_python_timestamps_have_no_zone(py: tuple[FakeArc, httpx.Client]) -> None:
    _, client = py
    write(client, "mem", {"time": [T0], "x": [1]})
    assert query(client, "SELECT time FROM memtrace.mem").json()["data"] == [
        ["2025-11-24T19:14:36.265000"]
    ]


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (1_764_011_676, 1_764_011_676_000_000),
        (1_764_011_676_265, 1_764_011_676_265_000),
        (T0, T0),
        (T0 * 1000 + 7, T0),
    ],
)
def test_time_unit_is_guessed_from_the_first_value(
    go: tuple[FakeArc, httpx.Client], first: int, expected: int
) -> None:
    fake, client = go
    assert write(client, "t", {"time": [first], "v": [1]}).status_code == 204
    assert fake.rows("memtrace", "t")[0]["time"] == expected


def test_time_column_rules(go: tuple[FakeArc, httpx.Client]) -> None:
    fake, client = go
    assert write(client, "t", {"time": ["x"], "v": [1]}).status_code == 400
    assert write(client, "t", {"time": [None], "v": [1]}).status_code == 400
    assert write(client, "t", {"time": [T0, T0], "v": [1]}).status_code == 400
    assert write(client, "t", {"v": [1, 2]}).status_code == 204
    rows = fake.rows("memtrace", "t")
    assert rows[0]["time"] == rows[1]["time"]
    assert abs(rows[0]["time"] - time.time() * 1e6) < 60e6


def test_write_rejections(go: tuple[FakeArc, httpx.Client]) -> None:
    fake, client = go
    assert write(client, "1bad", {"v": [1]}).status_code == 400
    assert write(client, "ok", {"v": [1]}, db="bad db").status_code == 400
    assert write(client, "ok", {"v": [b"raw"]}).status_code == 400
    assert write(client, "ok", {"v": [{"a": 1}]}).status_code == 400
    assert write(client, "ok", {"v": [1, "two"]}).status_code == 400
    r = client.post("/api/v1/write/msgpack", content=b"")
    assert r.status_code == 400
    assert r.json()["success"] is False
    assert write(client, "ok", {"v": [1]}, gz=True).status_code == 204
    assert fake.rows("memtrace", "ok") != []
    assert write(client, "nodb", {"v": [1]}, db=None).status_code == 204
    assert len(fake.rows("default", "nodb")) == 1


def test_python_gzip_needs_the_header_and_drops_underscore_columns(
    py: tuple[FakeArc, httpx.Client],
) -> None:
    fake, client = py
    assert write(client, "m", {"v": [1]}, gz=True).status_code == 400
    r = write(
        client, "m", {"v": [1], "_hidden": [2]}, gz=True, headers={"Content-Encoding": "gzip"}
    )
    assert r.status_code == 204
    assert list(fake.rows("memtrace", "m")[0]) == ["time", "v"]


def test_payload_cap_is_413() -> None:
    with running(max_payload=200) as fake, httpx.Client(base_url=fake.url) as client:
        assert write(client, "m", {"v": ["x" * 300]}).status_code == 413
        small = gzip.compress(msgpack.packb({"m": "m", "columns": {"v": ["a" * 5000]}}))
        assert len(small) < 200
        r = client.post("/api/v1/write/msgpack", content=small)
        assert r.status_code == 413


def test_writes_become_visible_after_the_flush_delay() -> None:
    with running(flush_delay=0.3) as fake, httpx.Client(base_url=fake.url) as client:
        write(client, "mem", {"time": [T0], "v": [1]})
        empty = query(client, "SELECT count(*) FROM memtrace.mem").json()
        assert empty == empty | {"success": True, "columns": [], "data": [], "row_count": 0}
        assert len(fake.rows("memtrace", "mem")) == 1
        assert fake.visible_rows("memtrace", "mem") == []
        time.sleep(0.35)
        assert query(client, "SELECT count(*) FROM memtrace.mem").json()["data"] == [[1]]
        write(client, "mem", {"time": [T0 + 1], "v": [2]})
        assert len(fake.visible_rows("memtrace", "mem")) == 1
        fake.flush()
        assert len(fake.visible_rows("memtrace", "mem")) == 2


def test_empty_measurement_shapes(
    go: tuple[FakeArc, httpx.Client], py: tuple[FakeArc, httpx.Client]
) -> None:
    r = query(go[1], "SELECT * FROM memtrace.nothing")
    assert r.status_code == 200
    assert r.json()["columns"] == []
    r = query(py[1], "SELECT * FROM memtrace.nothing")
    assert r.status_code == 400
    assert r.json()["detail"].startswith("IO Error: No files found")


def test_database_header_on_queries(go: tuple[FakeArc, httpx.Client]) -> None:
    _, client = go
    write(client, "mem", {"time": [T0], "v": [7]})
    hdr = {"x-arc-database": "memtrace"}
    assert query(client, "SELECT v FROM mem", hdr).json()["data"] == [[7]]
    assert query(client, "SELECT v FROM memtrace.mem", hdr).status_code == 400
    assert query(client, "SELECT v FROM mem").json()["row_count"] == 0  # database "default"
    sql = "WITH x AS (SELECT v FROM memtrace.mem m) SELECT extract(year FROM now()) > 0, v FROM x"
    assert query(client, sql).json()["data"] == [[True, 7]]


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[httpx.Client, httpx.Client, FakeArc]]:
    with (
        running() as g,
        running(version="python") as p,
        httpx.Client(base_url=g.url) as gc,
        httpx.Client(base_url=p.url) as pc,
    ):
        yield gc, pc, g


@pytest.mark.parametrize(
    ("sql", "go_status", "py_status"),
    [
        ("SELECT 'please delete me'", 200, 422),
        ("SELECT 1 AS set", 400, 200),
        ("SELECT 1; SELECT 2", 400, 200),
        ("SELECT 1;", 200, 200),
        ("SELECT 1 -- ; drop table x", 200, 422),
        ("SELECT * FROM read_csv('x')", 400, 400),
        ("SELECT * FROM '/etc/passwd'", 400, 400),
        ("DELETE FROM memtrace.mem", 400, 422),
        ("SELECT nope FROM (SELECT 1 AS x)", 500, 400),
        ("", 400, 400),
    ],
)
def test_sql_validation(
    both: tuple[httpx.Client, httpx.Client, FakeArc], sql: str, go_status: int, py_status: int
) -> None:
    go_client, py_client, go_fake = both
    r = query(go_client, sql)
    assert r.status_code == go_status, r.text
    if go_status != 200:
        assert r.json()["success"] is False
    r = query(py_client, sql)
    assert r.status_code == py_status, r.text
    if py_status != 200:
        assert "detail" in r.json()
    assert sql in go_fake.queries


def test_length_cap_and_content_type(go: tuple[FakeArc, httpx.Client]) -> None:
    _, client = go
    assert query(client, "SELECT 1" + " " * 9_992).status_code == 200
    assert query(client, "SELECT 1" + " " * 9_993).status_code == 400
    r = client.post("/api/v1/query", content=b'{"sql": "SELECT 1"}')
    assert r.status_code == 400
    assert r.json() == {"success": False, "error": "Invalid request body"}


def test_auth() -> None:
    tokens = {"rw": {"read", "write"}, "ro": {"read"}, "adm": {"admin"}}
    with running(tokens=tokens) as fake, httpx.Client(base_url=fake.url) as client:
        r = write(client, "m", {"v": [1]})
        assert r.status_code == 401
        assert r.json() == {"success": False, "error": "Authentication required"}
        r = write(client, "m", {"v": [1]}, headers={"Authorization": "Bearer nope"})
        assert r.json()["error"] == "Invalid or expired token"
        r = write(client, "m", {"v": [1]}, headers={"x-api-key": "ro"})
        assert r.status_code == 403
        assert r.json()["error"] == "Permission denied: write required"
        for hdr in ({"Authorization": "Bearer rw"}, {"Authorization": "Token rw"}):
            assert write(client, "m", {"v": [1]}, headers=hdr).status_code == 204
        assert write(client, "m", {"v": [1]}, headers={"Authorization": "adm"}).status_code == 204
        r = client.post("/api/v1/query?p=ro", json={"sql": "SELECT count(*) FROM memtrace.m"})
        assert r.json()["data"] == [[3]]
        flush = "/api/v1/write/line-protocol/flush"
        assert client.post(flush, headers={"x-api-key": "rw"}).status_code == 403
        r = client.post(flush, headers={"x-api-key": "adm"})
        assert r.json() == {"status": "success", "message": "All buffers flushed"}
        assert client.get("/health").json()["status"] == "ok"
        assert client.get("/ready").json()["status"] == "ready"
        assert client.get("/nope").status_code == 404


def test_shared_instance() -> None:
    fake = shared()
    assert shared() is fake
    r = httpx.get(fake.url + "/health")
    assert r.status_code == 200
    r = httpx.post(
        fake.url + "/api/v1/query",
        json={"sql": "SELECT 1"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.json()["data"] == [[1]]


def test_injected_write_and_query_failures(go: tuple[FakeArc, httpx.Client]) -> None:
    fake, client = go
    fake.fail_writes(503, count=2)
    fake.fail_writes(413, body={"error": "too big"})
    assert write(client, "m", {"v": [1]}).status_code == 503
    assert write(client, "m", {"v": [1]}).status_code == 503
    r = write(client, "m", {"v": [1]})
    assert (r.status_code, r.json()) == (413, {"error": "too big"})
    assert fake.rows("memtrace", "m") == []
    assert write(client, "m", {"v": [1]}).status_code == 204
    assert fake.writes == 1
    fake.fail_queries(500)
    assert query(client, "SELECT 1").status_code == 500
    assert query(client, "SELECT 1").status_code == 200
    fake.reset_stats()
    assert (fake.writes, fake.queries) == (0, [])


def test_lost_write_reply_still_stores(go: tuple[FakeArc, httpx.Client]) -> None:
    fake, client = go
    fake.drop_write_replies()
    with pytest.raises(httpx.TransportError):
        write(client, "m", {"time": [T0], "v": [1]})
    assert len(fake.rows("memtrace", "m")) == 1
    assert write(client, "m", {"time": [T0 + 1], "v": [2]}).status_code == 204


def test_cut_query_reply(go: tuple[FakeArc, httpx.Client]) -> None:
    fake, client = go
    write(client, "m", {"time": [T0, T0 + 1, T0 + 2], "v": [1, 2, 3]})
    fake.cut_query_replies(keep_rows=1)
    body = query(client, "SELECT v FROM memtrace.m ORDER BY v").json()
    assert body["row_count"] == 3
    assert body["data"] == [[1]]
    assert len(query(client, "SELECT v FROM memtrace.m").json()["data"]) == 3


def test_delete_api() -> None:
    with running() as fake, httpx.Client(base_url=fake.url) as client:
        r = client.post("/api/v1/delete", json={"measurement": "m", "where": "v = 1"})
        assert r.status_code == 403
        assert r.json() == {"success": False, "error": "Delete operations are disabled"}
    with running(delete_enabled=True, flush_delay=5) as fake, httpx.Client(base_url=fake.url) as c:
        write(c, "m", {"time": [T0, T0 + 1], "v": [1, 2], "resp_time": [1.0, 2.0]})
        fake.flush()
        write(c, "m", {"time": [T0 + 2], "v": [1]})  # buffered: not deleted
        req = {"database": "memtrace", "measurement": "m", "where": "WHERE v = 1"}
        assert c.post("/api/v1/delete", json=req).status_code == 400  # no confirm
        r = c.post("/api/v1/delete", json=req | {"dry_run": True})
        assert r.json()["deleted_count"] == 1
        assert len(fake.visible_rows("memtrace", "m")) == 2
        r = c.post("/api/v1/delete", json=req | {"confirm": True})
        body = r.json()
        assert body["success"] is True
        assert (body["deleted_count"], body["affected_files"], body["dry_run"]) == (1, 1, False)
        assert [row["v"] for row in fake.visible_rows("memtrace", "m")] == [2]
        assert len(fake.rows("memtrace", "m")) == 2
        for where in ("resp_time > 1", "v = 'please delete me'", "v = 1; x", "(v = 1", "true"):
            bad = req | {"where": where, "confirm": where == "resp_time > 1"}
            assert c.post("/api/v1/delete", json=bad).status_code == 400, where


def test_union_by_name_schema_evolution(go: tuple[FakeArc, httpx.Client]) -> None:
    _, client = go
    write(client, "m", {"time": [T0], "a": [1]})
    write(client, "m", {"time": [T0 + 1], "a": [2], "b": ["new"]})
    body = query(client, "SELECT a, b FROM memtrace.m ORDER BY time").json()
    assert body["data"] == [[1, None], [2, "new"]]
    for i in range(20):  # compaction keeps it working
        write(client, "m", {"time": [T0 + 10 + i], "a": [i]})
    assert query(client, "SELECT count(*) FROM memtrace.m").json()["data"] == [[22]]


def test_row_and_batch_forms(go: tuple[FakeArc, httpx.Client]) -> None:
    fake, client = go
    rows = [
        {"m": "r", "t": T0, "fields": {"v": 1.5}, "tags": {"host": "h1"}},
        {"m": "r", "t": T0 + 1, "fields": {"v": 2.5}, "tags": {"host": "h2"}},
    ]
    for payload in (rows, {"batch": rows}):
        r = client.post("/api/v1/write/msgpack", content=msgpack.packb(payload))
        assert r.status_code == 204
    assert [row["host"] for row in fake.rows("default", "r")] == ["h1", "h2", "h1", "h2"]


def test_down_and_up_keep_data_and_port(go: tuple[FakeArc, httpx.Client]) -> None:
    fake, client = go
    write(client, "m", {"time": [T0], "v": [1]})
    port = fake.port
    fake.down()
    with pytest.raises(httpx.ConnectError):
        httpx.get(fake.url + "/health", timeout=1)
    with pytest.raises(httpx.TransportError):
        query(client, "SELECT 1")
    fake.up()
    assert fake.port == port
    assert query(client, "SELECT v FROM memtrace.m").json()["data"] == [[1]]
