"""The deterministic fact split that replaces CrewAI's LLM extraction: documented cases, and
properties over arbitrary text (hypothesis): the same input gives the same facts, every fact is
a clean, bounded, unique piece, and no word of the text is lost."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from memtrace_crewai import ExtractedFact, MemtraceMemory, extract_facts, split_facts
from memtrace_crewai.extract import MAX_FACT_CHARS, TASK_CHARS

DUMP = (
    "Task: Research the Falcon launch\n"
    "Agent: Senior Researcher\n"
    "Expected result: the key facts\n"
    "Result: Thought: I now know the final answer\n"
    "Final Answer: Launch is on March 3rd. Budget: 2M.\n"
    "\n"
    "Risks:\n"
    "- Supplier delay (e.g. chips). 3 vendors affected!\n"
    "2) Weather?\n"
    "Open questions:\n"
)


def test_a_task_dump_is_split_into_its_results_facts_with_task_and_agent() -> None:
    facts = extract_facts(DUMP)
    assert facts == [
        "Launch is on March 3rd.",
        "Budget: 2M.",
        "Risks: Supplier delay (e.g. chips).",
        "Risks: 3 vendors affected!",
        "Risks: Weather?",
        "Open questions:",
    ]
    assert all(isinstance(f, ExtractedFact) for f in facts)
    assert facts[0].metadata == {"task": "Research the Falcon launch", "agent": "Senior Researcher"}


def test_a_kickoff_dump_is_split_too_and_nothing_is_quadratic() -> None:
    import time

    (fact,) = extract_facts("Input: What is the capital?\nAgent: Geographer\nResult: Paris.")
    assert fact == "Paris."
    assert isinstance(fact, ExtractedFact)
    assert fact.metadata == {"task": "What is the capital?", "agent": "Geographer"}
    start = time.perf_counter()
    for text in (
        "Task: a\nAgent: b\nExpected result: c\nResult: " + "\n" * 200_000,
        " \n" * 200_000,
        "Task: " + "x\nAgent: " * 50_000,
        "word " * 250_000,
    ):
        extract_facts(text)
    assert time.perf_counter() - start < 5  # linear: ~0.2 s here; the old patterns took minutes


def test_other_text_is_split_the_same_way_without_metadata() -> None:
    facts = extract_facts("First point. Second point.\r\nThird line")
    assert facts == ["First point.", "Second point.", "Third line"]
    assert not any(isinstance(f, ExtractedFact) for f in facts)
    assert extract_facts("") == []
    assert extract_facts("--- ***") == []


def test_long_pieces_are_cut_and_repeats_kept_once() -> None:
    long_line = " ".join(f"w{i:03d}" for i in range(1000))  # 4,999 characters, no sentence end
    pieces = split_facts(long_line + "\n" + long_line)
    assert [len(p) <= MAX_FACT_CHARS for p in pieces] == [True, True, True]
    assert " ".join(pieces) == long_line
    assert split_facts("x" * 2500) == ["x" * 2000, "x" * 500]  # no space: cut at the length
    task = "T" * 500
    (fact,) = extract_facts(f"Task: {task}\nAgent: A\nExpected result: x\nResult: ok")
    assert isinstance(fact, ExtractedFact)
    assert fact.task == "T" * TASK_CHARS


def test_memtrace_memory_uses_it(db_url: str) -> None:
    memory = MemtraceMemory(db_url)
    assert memory.extract_memories(DUMP) == extract_facts(DUMP)


_TEXT = st.text(
    alphabet=st.sampled_from([*"abcXYZ019 .!?:-*#•\n\r\t\"'(", "é", "日"]), max_size=600
)
_WORD = re.compile(r"\w+")


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_properties_of_the_split(text: str) -> None:
    facts = split_facts(text)
    assert split_facts(text) == facts  # deterministic
    assert len(set(facts)) == len(facts)
    for fact in facts:
        assert fact == fact.strip()
        assert fact
        assert len(fact) <= MAX_FACT_CHARS
        assert _WORD.search(fact)
        assert "\n" not in fact
    # no word is lost (list markers such as "1." or "2)" at a line's start are not words)
    kept = " ".join(facts)
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = re.sub(r"^\s*(?:[-*•·]+|\d{1,3}[.)]|#{1,6})\s+", "", line)
        for word in _WORD.findall(line):
            assert word in kept, (word, text, facts)


def test_the_role_is_the_agent_line_of_crewais_layout_not_one_in_the_text() -> None:
    (fact,) = extract_facts(
        "Task: Reply to the user. Transcript:\nUser: hi\nAgent: let me check\nUser: ok\n"
        "Agent: Support Rep\nExpected result: a reply\nResult: The order shipped on Monday."
    )
    assert fact == "The order shipped on Monday."
    assert isinstance(fact, ExtractedFact)
    assert fact.agent == "Support Rep"
    assert fact.task is not None
    assert fact.task.startswith("Reply to the user.")
    (kick,) = extract_facts(
        "Input: User: restart it\nAgent: restarting it now\nUser: thanks\nAgent: Ops Bot\n"
        "Result: Restarted the service."
    )
    assert isinstance(kick, ExtractedFact)
    assert (str(kick), kick.agent) == ("Restarted the service.", "Ops Bot")
