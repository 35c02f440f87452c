"""Offline CrewAI: a scripted ``BaseLLM`` that records every prompt it gets, an LLM and an
embedder that fail the test when called, and a deterministic local embedder (for stock
``Memory``)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from crewai.llms.base_llm import BaseLLM
from pydantic import Field, PrivateAttr


def _text(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    return "\n".join(str(m.get("content", "")) for m in messages)


class ScriptedLLM(BaseLLM):
    """Answers each call with the next scripted reply (a string, or a callable of the prompt
    text) and records the prompts. A reply without ``Final Answer`` or ``Action`` is wrapped as
    ``Thought: …\\nFinal Answer: <reply>`` (CrewAI's ReAct text path)."""

    model: str = "scripted"
    _replies: list[str | Callable[[str], str]] = PrivateAttr(default_factory=list)
    prompts: list[str] = Field(default_factory=list)

    def __init__(self, replies: Sequence[str | Callable[[str], str]] = (), **data: Any) -> None:
        data.setdefault("model", "scripted")
        super().__init__(**data)
        self._replies = list(replies)

    def supports_function_calling(self) -> bool:
        return False

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> Any:
        if response_model is not None:
            raise AssertionError(
                f"an LLM was asked for {response_model.__name__} (memory analysis?)"
            )
        prompt = _text(messages)
        self.prompts.append(prompt)
        if not self._replies:
            raise AssertionError("ScriptedLLM ran out of replies")
        reply = self._replies.pop(0)
        text = reply(prompt) if callable(reply) else reply
        if "Final Answer:" in text or "Action:" in text:
            return text
        return f"Thought: I know the answer.\nFinal Answer: {text}"


class ForbiddenLLM(BaseLLM):
    """An LLM that fails the test if anything calls it (memory must not)."""

    model: str = "forbidden"
    calls: int = 0

    def __init__(self, **data: Any) -> None:
        data.setdefault("model", "forbidden")
        super().__init__(**data)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise AssertionError("the memory path called an LLM")

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise AssertionError("the memory path called an LLM")


class ForbiddenEmbedder:
    """An embedder that fails the test if anything calls it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        raise AssertionError("the memory path called an embedder")


_WORD = re.compile(r"\w+")


class HashEmbedder:
    """A deterministic local embedder: bag of hashed words, L2-normalised (``dim`` floats).
    Texts sharing words are close, so stock ``Memory`` search is meaningful offline."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        out = []
        for text in texts:
            vec = [0.0] * self.dim
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
                vec[h % self.dim] += 1.0
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            out.append([v / norm for v in vec])
        return out
