"""What a task's output becomes in memory, without an LLM: a deterministic split into facts.

After each task CrewAI asks the memory to ``extract_memories`` from::

    Task: <task description>
    Agent: <agent role>
    Expected result: <expected output>
    Result: <the agent's final answer>

(after ``Agent.kickoff()`` / a ``LiteAgent`` run: ``Input: <the request>\nAgent: <role>\nResult:
<answer>``) and stores each extracted string. A description or request may itself hold such
lines (a chat transcript): the role is the first ``Agent:`` line that is directly followed by
``Expected result:`` (or, in a kickoff dump, ``Result:``), so only the dump's own layout
counts. CrewAI's stock ``Memory`` asks an LLM for the facts; memtrace
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
task (its first 200 characters; the input of a kickoff) and the agent role, which
``MemtraceMemory.remember_many`` stores as the memory's metadata (``task``, ``agent``) and as
the memory's agent. Content that is neither dump is split the same way, without task or agent.
Every step is linear in the text's length (no backtracking pattern).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_FACT_CHARS", "TASK_CHARS", "ExtractedFact", "extract_facts", "split_facts"]

MAX_FACT_CHARS = 2000
TASK_CHARS = 200

#: CrewAI's two dumps: the first label, the label after the role line, the result label.
_TASK_DUMP = ("Task:", "\nExpected result:", "\nResult:")
_KICKOFF_DUMP = ("Input:", "\nResult:", "\nResult:")
_AGENT = "\nAgent:"
_MARKER = re.compile(r"^\s*(?:[-*•·]+|\d{1,3}[.)]|#{1,6})\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[“‘])")
_WORDY = re.compile(r"\w")
_THOUGHT = re.compile(r"^[ \t]*Thought:[^\n]*$", re.MULTILINE)
_FINAL = re.compile(r"^[ \t]*Final Answer:[ \t]*", re.MULTILINE)


def _answer(result: str) -> str:
    """A task result without the ReAct scaffolding around the answer."""
    return _FINAL.sub("", _THOUGHT.sub("", result))


def _fields(content: str, labels: tuple[str, str, str]) -> tuple[str, str, str] | None:
    """(task or input, agent role, result) of a dump laid out by ``labels``, else None: the
    role is the first one-line ``Agent:`` directly followed by ``labels[1]``; the result
    follows the first ``labels[2]`` from there."""
    first, after_role, result_label = labels
    if not content.startswith(first):
        return None
    at = len(first)
    while True:
        agent = content.find(_AGENT, at)
        if agent < 0:
            return None
        line_end = content.find("\n", agent + len(_AGENT))
        if line_end < 0:
            return None
        if content.startswith(after_role, line_end):
            break
        at = agent + len(_AGENT)
    result = content.find(result_label, line_end)
    if result < 0:
        return None
    return (
        content[len(first) : agent],
        content[agent + len(_AGENT) : line_end],
        content[result + len(result_label) :],
    )


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
    text = content.replace("\r\n", "\n")
    fields = _fields(text, _TASK_DUMP) or _fields(text, _KICKOFF_DUMP)
    if fields is None:
        return list(split_facts(content))
    task = " ".join(fields[0][: TASK_CHARS * 8].split())[:TASK_CHARS] or None
    agent = fields[1].strip() or None
    return [ExtractedFact(f, task=task, agent=agent) for f in split_facts(_answer(fields[2]))]
