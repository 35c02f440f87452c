"""Deterministic synthetic agent memories for the benchmarks (shared by core and server benches).

The data imitates what the agents of a real memtrace deployment write:

* ~50 agents with roles (crawler, deployer, support, researcher, etl, monitor, planner), each
  role with its own log templates ("Crawled https://… found N product pages", "Deployed service
  X to staging (build …)", …) and event types (``page_crawled``, ``api_call``, ``error``,
  ``decision``, ``deployment``, …), mixed with free-text observations;
* free text drawn from a vocabulary of ~3,000 words with Zipf-like frequencies (a few hundred
  real domain words, most frequent first, then synthetic words for the long tail);
* sessions of 20–2000 memories (log-uniform sizes), each a contiguous run of one agent's
  memories a few seconds apart, started uniformly over the last 30 days — so a 24 h window
  holds ~1/30 of the data;
* content 40–300 characters, tags (0–3 from a small set) on ~60 %, importance on ~20 %, small
  metadata on ~25 %;
* memories come out in time order (as a live deployment writes them), and the content is made
  unique per (agent, event type) on its first 200 bytes so the engine's dedup never skips one.

Everything is a pure function of ``seed`` (and of ``anchor_us``, the "now" the 30 days end at).
Session 0 is planted: exactly :data:`CONTEXT_SESSION_SIZE` memories, ending ~3 h before the
anchor (the session-context benchmark reads it).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DAY_US = 86_400 * 1_000_000
SPAN_DAYS = 30
CONTEXT_SESSION_SIZE = 500
MIN_SESSION, MAX_SESSION = 20, 2000
MIN_CONTENT, MAX_CONTENT = 40, 300

ROLES = ("crawler", "deployer", "support", "researcher", "etl", "monitor", "planner")
TAGS = (
    "prod",
    "staging",
    "urgent",
    "retry",
    "customer",
    "billing",
    "security",
    "perf",
    "followup",
    "flaky",
    "data-quality",
    "experiment",
)
EVENT_TYPES = (
    "page_crawled",
    "api_call",
    "error",
    "decision",
    "deployment",
    "user_message",
    "tool_call",
    "observation",
    "alert",
    "general",
)

# Real words first (they get the frequent Zipf ranks), roughly in order of how often an agent
# log would use them. Stop words are included: real sentences have them (queries drop them).
_REAL_WORDS = """
the to and of a in for is on with was from by at that this it as be an are not after new
request user service page data error response found product customer order api agent server
task result update file check price report deploy config database query cache job retry
failed success status timeout latency memory queue worker session token model pipeline build
release staging production cluster node pod container image version branch commit test review
ticket issue bug fix feature support refund invoice payment account subscription plan billing
shipping delivery warehouse inventory stock catalog category search index crawl crawler url
link sitemap html parser extract schema table column row batch load transform export import
source target sync backup restore snapshot migration rollback alert incident outage metric
dashboard monitor cpu disk network bandwidth connection socket dns certificate tls proxy
gateway endpoint route handler middleware auth login password permission role admin email
notification message reply question answer summary research paper study experiment dataset
benchmark analysis hypothesis evidence finding conclusion citation author journal survey trend
forecast revenue cost budget quarter growth churn retention conversion funnel campaign
marketing sales lead contract vendor partner supplier region market competitor pricing
discount coupon cart checkout basket wishlist review rating feedback complaint escalation sla
priority severity owner team oncall runbook postmortem deadline milestone sprint roadmap
estimate risk dependency blocker decision reason tradeoff option approach strategy step plan
goal objective constraint requirement spec design architecture interface contract protocol
format json csv xml yaml parquet bucket storage object blob archive compress encrypt decrypt
hash signature webhook callback event stream topic partition offset consumer producer broker
kafka redis postgres sqlite mysql mongo elastic kubernetes docker terraform ansible helm nginx
python java golang rust node react frontend backend mobile android ios browser chrome firefox
safari mac linux windows cloud aws gcp azure lambda function region zone replica shard leader
follower quorum consensus lock mutex deadlock race condition leak spike drop surge slow fast
stable flaky healthy degraded down up started finished skipped blocked waiting running
scheduled cancelled approved rejected merged closed opened assigned resolved reopened
escalated paused resumed
"""

_SYLLABLES = [
    "ka",
    "to",
    "ri",
    "mo",
    "ne",
    "sa",
    "lu",
    "vi",
    "de",
    "ra",
    "po",
    "ti",
    "me",
    "zo",
    "fa",
    "gu",
    "ber",
    "lin",
    "dor",
    "ven",
    "tal",
    "mir",
    "kos",
    "pra",
    "sen",
    "vol",
    "tur",
    "gan",
    "hel",
    "fen",
    "quo",
    "zar",
    "nik",
    "pel",
    "dro",
    "mas",
    "tov",
    "lek",
    "sur",
    "bin",
    "cor",
    "ad",
    "el",
    "is",
    "or",
    "um",
    "an",
    "ex",
]

_DOMAINS = (
    "shop.example.com",
    "store.acme.io",
    "docs.widgets.dev",
    "market.globex.net",
    "news.initech.org",
    "catalog.umbrella.co",
    "blog.hooli.xyz",
    "api.stark.systems",
)
_SERVICES = (
    "checkout-api",
    "search-svc",
    "billing-worker",
    "auth-gateway",
    "inventory-sync",
    "email-sender",
    "recommendation-engine",
    "pricing-service",
)
_ENVS = ("staging", "production", "canary", "dev")
_TABLES = ("orders", "customers", "events", "products", "invoices", "sessions", "clicks")
_HOSTS = tuple(f"web-{i:02d}" for i in range(1, 25))
_APIS = ("arxiv", "github", "stripe", "openweather", "serpapi", "wikipedia", "crm")


def build_vocabulary(size: int = 3000, seed: int = 7) -> list[str]:
    """Real words first, then deterministic synthetic words (2–4 syllables) up to ``size``."""
    words: list[str] = []
    seen: set[str] = set()
    for word in _REAL_WORDS.split():
        if word not in seen:
            seen.add(word)
            words.append(word)
    rng = random.Random(seed)
    while len(words) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen and len(word) >= 4:
            seen.add(word)
            words.append(word)
    return words


VOCABULARY = build_vocabulary()
_STOP = frozenset(
    [
        "the",
        "to",
        "and",
        "of",
        "a",
        "in",
        "for",
        "is",
        "on",
        "with",
        "was",
        "from",
        "by",
        "at",
        "that",
        "this",
        "it",
        "as",
        "be",
        "an",
        "are",
        "not",
    ]
)


def _zipf_cum_weights(n: int, exponent: float = 1.05) -> list[float]:
    total = 0.0
    out: list[float] = []
    for rank in range(1, n + 1):
        total += 1.0 / rank**exponent
        out.append(total)
    return out


_CUM = _zipf_cum_weights(len(VOCABULARY))
_QUERY_WORDS = [w for w in VOCABULARY if w not in _STOP]
_QUERY_CUM = _zipf_cum_weights(len(_QUERY_WORDS), 0.9)


def words(rng: random.Random, k: int) -> str:
    return " ".join(rng.choices(VOCABULARY, cum_weights=_CUM, k=k))


def agent_names(count: int = 50) -> list[str]:
    return [f"{ROLES[i % len(ROLES)]}-{i:02d}" for i in range(count)]


def _template(rng: random.Random, role: str) -> tuple[str, str, str]:
    """(memory_type, event_type, content) for one log line of ``role``."""
    r = rng.random()
    n = rng.randint(1, 5000)
    if r < 0.35:  # free-text observation, any role
        return (
            "episodic",
            rng.choice(("observation", "general", "tool_call")),
            words(rng, rng.randint(8, 45)),
        )
    if r < 0.42:
        return (
            "decision",
            "decision",
            f"Decided to {words(rng, 3)} because {words(rng, rng.randint(5, 20))}",
        )
    if r < 0.47:
        return (
            "episodic",
            "error",
            f"Error in {rng.choice(_SERVICES)}: {words(rng, rng.randint(4, 14))} (code {rng.randint(400, 599)}, trace {rng.getrandbits(48):012x})",
        )
    dom = rng.choice(_DOMAINS)
    trace = f"{rng.getrandbits(32):08x}"
    if role == "crawler":
        choice = rng.randrange(3)
        if choice == 0:
            return (
                "episodic",
                "page_crawled",
                f"Crawled https://{dom}/{words(rng, 1)}/{rng.randint(1, 99999)} found {n} product pages",
            )
        if choice == 1:
            return (
                "episodic",
                "page_crawled",
                f"Fetched sitemap of {dom}: {n} URLs, {rng.randint(0, n)} new ({trace})",
            )
        return (
            "episodic",
            "error",
            f"Timeout crawling https://{dom}/{words(rng, 2).replace(' ', '-')} after {rng.randint(5, 120)}s ({trace})",
        )
    if role == "deployer":
        svc, env = rng.choice(_SERVICES), rng.choice(_ENVS)
        if rng.random() < 0.7:
            return (
                "episodic",
                "deployment",
                f"Deployed service {svc} to {env} (build {trace}, {rng.randint(1, 40)} pods)",
            )
        return (
            "episodic",
            "deployment",
            f"Rolled back {svc} in {env}: {words(rng, rng.randint(4, 12))} ({trace})",
        )
    if role == "support":
        if rng.random() < 0.5:
            return (
                "episodic",
                "user_message",
                f"Customer asked about {words(rng, rng.randint(4, 18))} (ticket #{rng.randint(10000, 999999)})",
            )
        return (
            "episodic",
            "user_message",
            f"Replied to ticket #{rng.randint(10000, 999999)}: {words(rng, rng.randint(6, 25))}",
        )
    if role == "researcher":
        if rng.random() < 0.5:
            return (
                "episodic",
                "api_call",
                f"Queried {rng.choice(_APIS)} for {words(rng, 3)}: {n} results in {rng.randint(20, 3000)} ms",
            )
        return (
            "episodic",
            "observation",
            f"Read paper on {words(rng, 4)}; key finding: {words(rng, rng.randint(6, 20))}",
        )
    if role == "etl":
        table = rng.choice(_TABLES)
        if rng.random() < 0.75:
            return (
                "episodic",
                "api_call",
                f"Loaded {n * 37} rows into {table} from s3://{words(rng, 1)}-exports/{trace}.parquet in {rng.randint(50, 90000)} ms",
            )
        return (
            "episodic",
            "error",
            f"Schema mismatch in {table}: column {words(rng, 1)} {words(rng, rng.randint(3, 10))} (run {trace})",
        )
    if role == "monitor":
        host = rng.choice(_HOSTS)
        if rng.random() < 0.7:
            return (
                "episodic",
                "observation",
                f"CPU at {rng.uniform(1, 100):.1f}% on {host}, p99 latency {rng.randint(3, 2500)} ms, {rng.randint(10, 900)} req/s ({trace})",
            )
        return (
            "episodic",
            "alert",
            f"Alert on {host}: {words(rng, rng.randint(3, 12))} (incident {trace})",
        )
    # planner
    if rng.random() < 0.5:
        return (
            "decision",
            "decision",
            f"Plan step {rng.randint(1, 30)}: {words(rng, rng.randint(5, 20))}",
        )
    return (
        "episodic",
        "tool_call",
        f"Called tool {words(rng, 1)}_{words(rng, 1)} with {words(rng, 3)} -> {n} items ({trace})",
    )


def _fit(rng: random.Random, content: str) -> str:
    while len(content) < MIN_CONTENT:
        content = f"{content} {words(rng, 4)}"
    if len(content) > MAX_CONTENT:
        cut = content.rfind(" ", 0, MAX_CONTENT)
        content = content[: cut if cut > MIN_CONTENT else MAX_CONTENT]
    return content


@dataclass(frozen=True, slots=True)
class SessionPlan:
    index: int
    session_id: str
    agent_id: str
    size: int
    start_us: int
    mean_gap_us: int


def plan_sessions(n: int, seed: int, anchor_us: int, agents: list[str]) -> list[SessionPlan]:
    """Sessions (sizes 20–2000, log-uniform) covering exactly ``n`` memories."""
    rng = random.Random(f"sessions:{seed}")
    plans: list[SessionPlan] = []
    total = 0
    index = 0
    while total < n:
        if index == 0:
            size = min(CONTEXT_SESSION_SIZE, n)
        else:
            size = int(math.exp(rng.uniform(math.log(MIN_SESSION), math.log(MAX_SESSION))))
            size = min(size, n - total)
        mean_gap = rng.randint(2, 40) * 1_000_000
        duration = size * mean_gap
        if index == 0:
            mean_gap = 20 * 1_000_000
            start = anchor_us - 3 * 3_600_000_000 - size * mean_gap
        else:
            start = anchor_us - rng.randint(duration, max(duration + 1, SPAN_DAYS * DAY_US))
        digest = hashlib.sha1(f"{seed}:{index}".encode()).hexdigest()[:20]
        plans.append(
            SessionPlan(index, f"sess_{digest}", rng.choice(agents), size, start, mean_gap)
        )
        total += size
        index += 1
    return plans


def _session_stream(plan: SessionPlan, seed: int) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
    rng = random.Random(f"session:{seed}:{plan.index}")
    role = plan.agent_id.rsplit("-", 1)[0]
    t = plan.start_us
    for i in range(plan.size):
        t += int(rng.expovariate(1.0 / plan.mean_gap_us)) + 1
        mtype, etype, content = _template(rng, role)
        item: dict[str, Any] = {
            "agent_id": plan.agent_id,
            "session_id": plan.session_id,
            "memory_type": mtype,
            "event_type": etype,
            "content": _fit(rng, content),
        }
        if rng.random() < 0.6:
            item["tags"] = rng.sample(TAGS, rng.randint(1, 3))
        if rng.random() < 0.2:
            item["importance"] = round(rng.random(), 2)
        if rng.random() < 0.25:
            item["metadata"] = {"step": i, "source": role, "ok": etype != "error"}
        yield t, plan.index, i, item


def generate(
    n: int, seed: int, anchor_us: int, agents: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    """``n`` memory dicts (MemoryCreate-shaped, ``time`` as an aware datetime), in time order."""
    agents = agents or agent_names()
    plans = plan_sessions(n, seed, anchor_us, agents)
    seen: set[bytes] = set()
    for t, _, seq, item in heapq.merge(*(_session_stream(p, seed) for p in plans)):
        key = hashlib.blake2b(
            f"{item['agent_id']}|{item['event_type']}|".encode() + item["content"].encode()[:200],
            digest_size=12,
        ).digest()
        if key in seen:  # extremely rare with the templates above; keep dedup out of the way
            item["content"] = f"#{seq} {item['content']}"[:MAX_CONTENT]
            key = hashlib.blake2b(item["content"].encode(), digest_size=12).digest()
        seen.add(key)
        item["time"] = datetime.fromtimestamp(t / 1_000_000, tz=UTC)
        yield item


def make_queries(count: int, seed: int) -> list[str]:
    """Realistic 2–4 word keyword queries (Zipf-weighted over the vocabulary, stop words excluded)."""
    rng = random.Random(f"queries:{seed}")
    out = []
    for _ in range(count):
        out.append(" ".join(rng.choices(_QUERY_WORDS, cum_weights=_QUERY_CUM, k=rng.randint(2, 4))))
    return out


def content_needles(count: int, seed: int) -> list[str]:
    """Substrings for ``content_contains`` (mid-frequency words and template fragments)."""
    rng = random.Random(f"needles:{seed}")
    pool = [
        *VOCABULARY[100:600],
        *_SERVICES,
        *_HOSTS,
        "product pages",
        "Timeout crawling",
        "rows into",
    ]
    return [rng.choice(pool) for _ in range(count)]


# -- shared measurement helpers ------------------------------------------------------------------


def percentile(sorted_ns: list[int], pct: float) -> float:
    """Nearest-rank percentile of sorted nanosecond samples, in milliseconds."""
    if not sorted_ns:
        return float("nan")
    rank = max(1, math.ceil(pct / 100 * len(sorted_ns)))
    return sorted_ns[min(rank, len(sorted_ns)) - 1] / 1e6


def machine_info() -> dict[str, Any]:
    """CPU model, core count, load, Python and SQLite versions (for the published tables)."""
    import os
    import platform
    import sqlite3

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor()
    return {
        "cpu": model,
        "nproc": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
