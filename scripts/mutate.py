#!/usr/bin/env python3
"""A small AST mutation-testing runner (a one-off audit tool, not part of CI).

It applies one mutation at a time to a copy of ``memtrace_core`` placed first on
``PYTHONPATH`` (so the editable install is shadowed, the work tree is never touched) and runs a
targeted, fast test subset against it. A mutant is *killed* when the subset fails, *survived*
when it passes, *timeout* when it runs past ``--timeout`` seconds (counted as killed by most
tools; reported separately here).

Mutation operators (one change per mutant): comparison operators (``<``↔``<=``, ``>``↔``>=``,
``==``↔``!=``, ``in``↔``not in``, ``is``↔``is not``), arithmetic (``+``↔``-``, ``*``↔``/``,
``//``→``/``, ``**``→``*``), augmented assignment, ``and``↔``or``, ``not x``→``x``,
boolean constants, numeric constants (``n``→``n+1``), ``return x``→``return None``, a call
statement removed, a ``min``↔``max`` swap. Strings (messages, docstrings) are never mutated.

Usage::

    .venv/bin/python scripts/mutate.py packages/memtrace-core/src/memtrace_core/ranking.py \\
        --tests tests/core/test_text_and_ranking.py tests/conformance/test_ranking_order.py \\
        --jobs 2 --timeout 60 --out /tmp/mut-ranking.json [--sample 200 --seed 8] [--list]

``--only ID ...`` re-runs chosen mutants (e.g. the survivors of a previous run, to measure the
score after new tests); ``--show ID`` prints a mutant's diff.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import copy
import difflib
import json
import os
import random
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "packages" / "memtrace-core" / "src" / "memtrace_core"

_CMP_SWAP: dict[type, type] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BIN_SWAP: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Pow: ast.Mult,
    ast.Mod: ast.Mult,
}


@dataclass
class Mutant:
    id: int
    line: int
    kind: str
    description: str
    status: str = "pending"
    seconds: float = 0.0


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    return isinstance(parent, ast.Expr) and isinstance(node, ast.Constant)


def _enumerate(tree: ast.Module) -> list[tuple[int, str, str]]:
    """(node index in ast.walk order, kind, description) for every mutation point."""
    points: list[tuple[int, str, str]] = []
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    for index, node in enumerate(ast.walk(tree)):
        parent = parents.get(id(node))
        line = getattr(node, "lineno", 0)
        # Skip annotations and type-only code.
        if isinstance(parent, (ast.AnnAssign,)) and node is parent.annotation:
            continue
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in _CMP_SWAP:
                    points.append(
                        (
                            index,
                            f"cmp:{k}",
                            f"L{line} {type(op).__name__}->{_CMP_SWAP[type(op)].__name__}",
                        )
                    )
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN_SWAP:
            if (
                isinstance(node.op, ast.Mod)
                and isinstance(node.left, ast.Constant)
                and isinstance(node.left.value, str)
            ):
                continue  # "%" formatting
            points.append(
                (
                    index,
                    "bin",
                    f"L{line} {type(node.op).__name__}->{_BIN_SWAP[type(node.op)].__name__}",
                )
            )
        elif isinstance(node, ast.AugAssign) and type(node.op) in _BIN_SWAP:
            points.append(
                (
                    index,
                    "aug",
                    f"L{line} {type(node.op).__name__}= -> {_BIN_SWAP[type(node.op)].__name__}=",
                )
            )
        elif isinstance(node, ast.BoolOp):
            points.append(
                (
                    index,
                    "boolop",
                    f"L{line} {type(node.op).__name__}->{'Or' if isinstance(node.op, ast.And) else 'And'}",
                )
            )
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            points.append((index, "not", f"L{line} remove not"))
        elif isinstance(node, ast.Constant) and not _is_docstring(node, parent):
            if isinstance(node.value, bool):
                points.append((index, "const", f"L{line} {node.value}->{not node.value}"))
            elif isinstance(node.value, (int, float)) and not isinstance(parent, ast.Subscript):
                points.append((index, "const", f"L{line} {node.value!r}->{node.value + 1!r}"))
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                points.append((index, "return", f"L{line} return None"))
        elif isinstance(node, ast.Expr) and isinstance(node.value, (ast.Call, ast.Await)):
            call = node.value.value if isinstance(node.value, ast.Await) else node.value
            if isinstance(call, ast.Call):
                fn = ast.unparse(call.func)
                if "log" not in fn and "warn" not in fn:
                    points.append((index, "nocall", f"L{line} remove {fn}(...)"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("min", "max")
        ):
            other = "max" if node.func.id == "min" else "min"
            points.append((index, "minmax", f"L{line} {node.func.id}->{other}"))
    return points


def _apply(tree: ast.Module, index: int, kind: str) -> ast.Module:
    tree = copy.deepcopy(tree)
    parents: dict[int, tuple[ast.AST, str, int | None]] = {}
    for node in ast.walk(tree):
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                for k, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        parents[id(item)] = (node, name, k)
            elif isinstance(value, ast.AST):
                parents[id(value)] = (node, name, None)
    node = list(ast.walk(tree))[index]

    def replace(new: ast.AST) -> None:
        parent, name, k = parents[id(node)]
        if k is None:
            setattr(parent, name, new)
        else:
            getattr(parent, name)[k] = new

    if kind.startswith("cmp:"):
        k = int(kind.split(":")[1])
        assert isinstance(node, ast.Compare)
        node.ops[k] = _CMP_SWAP[type(node.ops[k])]()
    elif kind in ("bin", "aug"):
        assert isinstance(node, (ast.BinOp, ast.AugAssign))
        node.op = _BIN_SWAP[type(node.op)]()
    elif kind == "boolop":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "not":
        assert isinstance(node, ast.UnaryOp)
        replace(node.operand)
    elif kind == "const":
        assert isinstance(node, ast.Constant)
        node.value = (not node.value) if isinstance(node.value, bool) else node.value + 1
    elif kind == "return":
        assert isinstance(node, ast.Return)
        node.value = ast.Constant(None)
    elif kind == "nocall":
        replace(ast.Pass())
    elif kind == "minmax":
        assert isinstance(node, ast.Call)
        assert isinstance(node.func, ast.Name)
        node.func.id = "max" if node.func.id == "min" else "min"
    ast.fix_missing_locations(tree)
    return tree


class _Override:
    """A meta-path finder that serves one module from a source string (the mutant)."""

    def __init__(self, name: str, source: str, origin: str) -> None:
        self.name, self.source, self.origin = name, source, origin

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        import importlib.util

        if fullname != self.name:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=self.origin)

    def create_module(self, spec: object) -> None:
        return None

    def exec_module(self, module: object) -> None:
        module.__file__ = self.origin  # type: ignore[attr-defined]
        exec(compile(self.source, self.origin, "exec"), module.__dict__)


def _child(name: str, source: str, origin: str, args: list[str]) -> int:
    """In a forked child: forget every first-party and test module, serve the mutant, run
    pytest in-process (third-party imports stay warm from the parent)."""
    for mod in list(sys.modules):
        if mod.startswith(("memtrace_", "tests", "conftest", "test_")):
            del sys.modules[mod]
    sys.meta_path.insert(0, _Override(name, source, origin))  # type: ignore[arg-type]
    if not os.environ.get("MUTATE_DEBUG"):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    import pytest

    return int(pytest.main(args))


def _run(
    mutant_src: str, rel: str, tests: list[str], extra: list[str], timeout: float
) -> tuple[str, float]:
    name = "memtrace_core." + rel.removesuffix(".py").replace("/", ".")
    origin = str(PKG / rel)
    args = [
        "-x",
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--timeout",
        str(int(timeout)),
        *extra,
        *tests,
    ]
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.chdir(ROOT)
        code = 1
        try:
            code = _child(name, mutant_src, origin, args)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = started + timeout + 15
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - started
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return "survived", elapsed
    if code == 5:
        return "no-tests", elapsed
    if code == 2:
        return "timeout" if elapsed >= timeout else "killed", elapsed
    return "killed", elapsed


def _warm() -> None:
    """Import the heavy third-party modules once in the parent, so forks start warm."""
    import pydantic  # noqa: F401
    import pytest  # noqa: F401

    import memtrace_core
    import memtrace_core.stores.sqlite  # noqa: F401

    for mod in list(sys.modules):
        if mod.startswith("memtrace_"):
            del sys.modules[mod]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("module", help="path of a module inside memtrace_core")
    ap.add_argument("--tests", nargs="+", default=[])
    ap.add_argument("--pytest-args", default="", help="extra pytest args (one string)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--only", type=int, nargs="*")
    ap.add_argument("--out", default="")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--show", type=int)
    ap.add_argument("--write", type=int, help="write mutant ID over the module (manual check)")
    args = ap.parse_args()

    path = Path(args.module).resolve()
    rel = str(path.relative_to(PKG))
    tree = ast.parse(path.read_text())
    points = _enumerate(tree)
    mutants = [Mutant(i, int(d.split()[0][1:]), k, d) for i, (_, k, d) in enumerate(points)]

    def source(mid: int) -> str:
        index, kind, _ = points[mid]
        return ast.unparse(_apply(tree, index, kind)) + "\n"

    if args.list:
        for m in mutants:
            print(m.id, m.description)
        return
    if args.show is not None:
        base = ast.unparse(tree).splitlines()
        diff = difflib.unified_diff(base, source(args.show).splitlines(), lineterm="", n=1)
        print("\n".join(diff))
        return
    if args.write is not None:
        path.write_text(source(args.write))
        print(f"wrote mutant {args.write} ({mutants[args.write].description}) to {path}")
        return

    chosen = mutants
    if args.only is not None:
        wanted = set(args.only)
        chosen = [m for m in mutants if m.id in wanted]
    elif args.sample and args.sample < len(mutants):
        chosen = sorted(random.Random(args.seed).sample(mutants, args.sample), key=lambda m: m.id)
    extra = shlex.split(args.pytest_args)
    os.chdir(ROOT)
    _warm()
    base_status, base_time = _run(ast.unparse(tree) + "\n", rel, args.tests, extra, args.timeout)
    print(
        f"{rel}: {len(mutants)} mutants, running {len(chosen)}; baseline {base_status} in {base_time:.1f}s",
        flush=True,
    )
    if base_status != "survived":
        sys.exit("the unmutated module fails the subset: fix the subset first")

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(_run, source(m.id), rel, args.tests, extra, args.timeout): m for m in chosen
        }
        for future in concurrent.futures.as_completed(futures):
            m = futures[future]
            m.status, m.seconds = future.result()
            print(f"{m.id:4d} {m.status:9s} {m.seconds:5.1f}s {m.description}", flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps([asdict(x) for x in chosen], indent=1))
    counts: dict[str, int] = {}
    for m in chosen:
        counts[m.status] = counts.get(m.status, 0) + 1
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    print(
        f"{rel}: {counts}; killed (incl. timeouts) {killed}/{len(chosen)} = {killed / max(len(chosen), 1):.1%}"
    )


if __name__ == "__main__":
    main()
