"""How the PostgreSQL store's driver was chosen: psycopg 3 against asyncpg on the write paths
a memory store needs, rows per second and the client's CPU per row, same table, same server.

    .venv/bin/python benchmarks/pg_driver_bench.py [--rows 10000] [--dsn postgresql://…]

Without ``--dsn`` it starts the test harness's throw-away PostgreSQL (tests/pg_harness.py:
127.0.0.1, ``fsync=off``, ``synchronous_commit=on``, so every COMMIT still waits for its WAL
write). The table is a memories-like table with the store's primary key and time index. The
figures are in docs/architecture.md ("The PostgreSQL store: the driver").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import psycopg

DDL = """
DROP TABLE IF EXISTS m;
CREATE TABLE m (
  org_id text NOT NULL, seq bigint GENERATED ALWAYS AS IDENTITY, id text NOT NULL,
  agent_id text NOT NULL, content text NOT NULL, metadata jsonb, tags text[],
  time bigint NOT NULL, recorded_at bigint NOT NULL, PRIMARY KEY (org_id, id));
CREATE INDEX ON m (org_id, time, seq);
"""
COLUMNS = ["org_id", "id", "agent_id", "content", "metadata", "tags", "time", "recorded_at"]
COLS = "(" + ", ".join(COLUMNS) + ")"
UNNEST = (
    f"INSERT INTO m {COLS} SELECT a, b, c, d, e, f::text[], g, h FROM unnest({{}}::text[], "
    "{}::text[], {}::text[], {}::text[], {}::jsonb[], {}::text[], {}::bigint[], {}::bigint[]) "
    "AS u(a, b, c, d, e, f, g, h)"
)


def rows(n: int) -> list[tuple[Any, ...]]:
    t0 = 1_700_000_000_000_000
    return [
        (
            "org_a",
            f"mem_{i:08d}",
            "agent-1",
            f"deployed service {i} to production cluster after tests passed",
            json.dumps({"k": i}),
            ["deploy", "prod"],
            t0 + i,
            t0 + i,
        )
        for i in range(n)
    ]


def columns_of(batch: list[tuple[Any, ...]]) -> list[list[Any]]:
    cols = [list(c) for c in zip(*batch, strict=True)]
    cols[5] = ["{" + ",".join(t) + "}" for t in cols[5]]  # unnest flattens a 2-D array
    return cols


async def timed(name: str, n: int, run: Callable[[], Awaitable[None]]) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    await run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{name:<50} {n / wall:>8.0f} rows/s   client CPU {cpu / n * 1e6:>6.1f} µs/row")


async def psycopg_paths(dsn: str, data: list[tuple[Any, ...]]) -> None:
    n = len(data)
    sql = f"INSERT INTO m {COLS} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    conns = [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(8)]
    c = conns[0]

    async def reset() -> None:
        await c.execute(DDL)

    async def single() -> None:
        for r in data:
            await c.execute(sql, r, prepare=True)

    async def concurrent() -> None:
        async def one(conn: Any, part: list[tuple[Any, ...]]) -> None:
            for r in part:
                await conn.execute(sql, r, prepare=True)

        await asyncio.gather(*(one(conns[i], data[i::8]) for i in range(8)))

    async def executemany() -> None:
        for s in range(0, n, 100):
            async with c.transaction(), c.cursor() as cur:
                await cur.executemany(sql, data[s : s + 100])

    async def copy() -> None:
        for s in range(0, n, 100):
            async with c.transaction(), c.cursor().copy(f"COPY m {COLS} FROM STDIN") as cp:
                for r in data[s : s + 100]:
                    await cp.write_row(r)

    async def unnest() -> None:
        stmt = UNNEST.format(*["%s"] * 8)
        for s in range(0, n, 100):
            await c.execute(stmt, columns_of(data[s : s + 100]), prepare=True)

    for name, run in (
        ("single-row INSERT, 1 connection, commit each", single),
        ("single-row INSERT, 8 connections", concurrent),
        ("100-row batches, executemany, 1 txn each", executemany),
        ("100-row batches, COPY, 1 txn each", copy),
        ("100-row batches, INSERT … unnest, 1 statement", unnest),
    ):
        await reset()
        await timed(f"psycopg  {name}", n, run)
    for conn in conns:
        await conn.close()


async def asyncpg_paths(dsn: str, data: list[tuple[Any, ...]]) -> None:
    n = len(data)
    sql = f"INSERT INTO m {COLS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    pool = await asyncpg.create_pool(dsn, min_size=8, max_size=8)

    async def single() -> None:
        async with pool.acquire() as c:
            for r in data:
                await c.execute(sql, *r)

    async def concurrent() -> None:
        async def one(part: list[tuple[Any, ...]]) -> None:
            async with pool.acquire() as c:
                for r in part:
                    await c.execute(sql, *r)

        await asyncio.gather(*(one(data[i::8]) for i in range(8)))

    async def executemany() -> None:
        async with pool.acquire() as c:
            for s in range(0, n, 100):
                async with c.transaction():
                    await c.executemany(sql, data[s : s + 100])

    async def copy() -> None:
        async with pool.acquire() as c:
            for s in range(0, n, 100):
                await c.copy_records_to_table("m", records=data[s : s + 100], columns=COLUMNS)

    async def unnest() -> None:
        stmt = UNNEST.format(*[f"${i}" for i in range(1, 9)])
        async with pool.acquire() as c:
            for s in range(0, n, 100):
                await c.execute(stmt, *columns_of(data[s : s + 100]))

    for name, run in (
        ("single-row INSERT, 1 connection, commit each", single),
        ("single-row INSERT, 8 connections", concurrent),
        ("100-row batches, executemany, 1 txn each", executemany),
        ("100-row batches, copy_records_to_table", copy),
        ("100-row batches, INSERT … unnest, 1 statement", unnest),
    ):
        await pool.execute(DDL)
        await timed(f"asyncpg  {name}", n, run)
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dsn", help="a database to use (its table m is dropped)")
    args = parser.parse_args()
    dsn = args.dsn
    if dsn is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        import pg_harness

        dsn = pg_harness.new_database(template=None)
    print(
        f"{args.rows} rows; psycopg {psycopg.__version__} ({psycopg.pq.__impl__}, libpq "
        f"{psycopg.pq.version()}), asyncpg {asyncpg.__version__}"
    )
    data = rows(args.rows)
    asyncio.run(psycopg_paths(dsn, data))
    asyncio.run(asyncpg_paths(dsn, data))


if __name__ == "__main__":
    main()
