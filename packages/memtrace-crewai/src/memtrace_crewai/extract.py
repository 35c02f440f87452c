"""What a task's output becomes in memory, without an LLM: a deterministic split into facts.

After each task CrewAI asks the memory to ``extract_memories`` from::

    Task: <task description>
    Agent: <agent role>
    Expected result: <expected output>
    Result: <the agent's final answer>

and stores each extracted string. CrewAI's stock ``Memory`` asks an LLM for the facts; memtrace
splits the **result** instead, the same way every time (:func:`split_facts`):

0. of the result, the agent's ReAct scaffolding goes: ``Thought:`` lines (its reasoning, not a
   fact) are dropped and a ``Final Answer:`` prefix is removed;
1. line by line (Windows and old Mac line ends are newlines); list markers (``-``, ``*``,
   ``•``, ``1.``, ``1)``) and heading marks (``#``) are removed; empty lines and lines without a
   letter or digit are dropped;
2. a line ending with ``:`` (a heading such as ``Findings:``) is put in front of each following
   line until the next empty line or heading (``Findings: revenue grew 12%``); a heading with
   no line under it is a fact of its own (nothing of the text is lost);
3. each line is split into sentences after ``.``, ``!`` or ``?`` followed by white space and a
   capital letter, a digit or an opening quote or bracket (so ``e.g. this`` and ``3.5 km`` stay
   whole);
4. a piece longer than 2,000 characters is cut at the last space before that length (or at the
   length);
5. repeated pieces are kept once, in order of first appearance.

Each fact is an :class:`ExtractedFact`: a ``str`` (what CrewAI expects) that also carries the
task (its first 200 characters) and the agent role, which ``MemtraceMemory.remember_many``
stores as the memory's metadata (``task``, ``agent``). Content that is not such a task dump is
split the same way, without task or agent.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_FACT_CHARS", "TASK_CHARS", "ExtractedFact", "extract_facts", "split_facts"]

MAX_FACT_CHARS = 2000
TASK_CHARS = 200

_DUMP = re.compile(
    r"\ATask:(?P<task>.*?)\nAgent:(?P<agent>.*?)\nExpected result:(?P<expected>.*?)\n"
    r"Result:(?P<result>.*)\Z",
    re.DOTALL,
)
_MARKER = re.compile(r"^\s*(?:[-*•·]+|\d{1,3}[.)]|#{1,6})\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[“‘])")
_WORDY = re.compile(r"\w")
_THOUGHT = re.compile(r"^\s*Thought:.*$", re.MULTILINE)
_FINAL = re.compile(r"^\s*Final Answer:\s*", re.MULTILINE)


def _answer(result: str) -> str:
    """A task result without the ReAct scaffolding around the answer."""
    return _FINAL.sub("", _THOUGHT.sub("", result))


class ExtractedFact(str):
    """A fact split from a task's output: a ``str`` carrying the task and agent it came from."""

    task: str | None
    agent: str | None

    def __new__(cls, text: str, *, task: str | None = None, agent: str | None = None) -> Any:
        fact = super().__new__(cls, text)
        fact.task = task
        fact.agent = agent
        return fact

    @property
    def metadata(self) -> dict[str, str]:
        """The metadata this fact is stored with (``task``, ``agent``, when known)."""
        meta: dict[str, str] = {}
        if self.task:
            meta["task"] = self.task
        if self.agent:
            meta["agent"] = self.agent
        return meta


def _cut(piece: str) -> list[str]:
    out: list[str] = []
    while len(piece) > MAX_FACT_CHARS:
        at = piece.rfind(" ", 0, MAX_FACT_CHARS + 1)
        if at <= 0:
            at = MAX_FACT_CHARS
        out.append(piece[:at].rstrip())
        piece = piece[at:].lstrip()
    if piece:
        out.append(piece)
    return out


def split_facts(text: str) -> list[str]:
    """``text`` split into facts, deterministically (see the module docstring)."""
    facts: list[str] = []
    seen: set[str] = set()
    heading: str | None = None
    heading_used = False

    def add(sentence: str) -> None:
        for piece in _cut(sentence):
            if piece not in seen:
                seen.add(piece)
                facts.append(piece)

    def close_heading() -> None:
        nonlocal heading
        if heading is not None and not heading_used:
            add(heading)
        heading = None

    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _MARKER.sub("", raw).strip()
        if not line:
            close_heading()
            continue
        if not _WORDY.search(line):
            continue
        if line.endswith(":"):
            close_heading()
            heading, heading_used = line, False
            continue
        for sentence in _SENTENCE_END.split(line):
            sentence = sentence.strip()
            if not _WORDY.search(sentence):
                continue
            if heading is not None:
                sentence = f"{heading} {sentence}"
                heading_used = True
            add(sentence)
    close_heading()
    return facts


def extract_facts(content: str) -> list[str]:
    """The facts of ``content``: of a CrewAI task dump, its result's, each carrying the task and
    agent (:class:`ExtractedFact`); of any other text, its own."""
    if not isinstance(content, str):
        raise TypeError(f"content must be a string, got {type(content).__name__}")
    match = _DUMP.match(content.replace("\r\n", "\n"))
    if match is None:
        return list(split_facts(content))
    task = " ".join(match["task"].split())[:TASK_CHARS] or None
    agent = match["agent"].strip() or None
    return [ExtractedFact(f, task=task, agent=agent) for f in split_facts(_answer(match["result"]))]
