"""Text analysis shared by the stores and the reranker.

Everything here is a pure function of its arguments (no I/O, no global state apart from
memoisation caches) so that every store and the reranker see exactly the same tokens:

* :func:`tokenize` mirrors SQLite FTS5's ``unicode61 remove_diacritics 2`` tokenizer:
  case-folded runs of letters and digits, everything else is a separator, diacritics removed.
* :func:`stem` mirrors FTS5's ``porter`` tokenizer wrapper (the original Porter algorithm,
  tokens shorter than 3 or longer than 64 characters are passed through unchanged).
* :data:`STOP_WORDS` is a general English stop-word list that also contains the question
  words of natural-language queries ("what", "when", "who", "did", ...).
* :func:`query_terms` turns a free-text query into the keywords worth searching for.
* :func:`extract_time_window` recognises a small, conservative set of time expressions
  ("yesterday", "last week", "in May 2023", "3 days ago", ...) and turns them into a UTC window.
"""

from __future__ import annotations

import calendar
import functools
import re
import threading
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import snowballstemmer

__all__ = [
    "STOP_WORDS",
    "TimeWindow",
    "analyze",
    "extract_time_window",
    "query_terms",
    "stem",
    "tokenize",
    "word_variants",
]

# --------------------------------------------------------------------------------------------
# Tokenisation
# --------------------------------------------------------------------------------------------

# A token is a maximal run of Unicode letters/digits (``\w`` without the underscore), which is
# what unicode61 treats as token characters by default (categories L*, N* and Co). unicode61's
# tables cover the Basic Multilingual Plane only: it treats every code point above U+FFFF
# (emoji, ...) as a token character, and so do we.
_TOKEN_RE = re.compile(r"(?:[^\W_]|[\U00010000-\U0010FFFF])+")
# For ASCII text (most memories) the same tokens, ~3x faster to find: after lower-casing, the
# ASCII letters and digits are exactly the ASCII characters of ``[^\W_]``.
_ASCII_TOKEN_RE = re.compile(r"[a-z0-9]+")

# FTS5's porter wrapper only stems tokens whose length is within these bounds.
_PORTER_MIN_LEN = 3
_PORTER_MAX_LEN = 64


@functools.lru_cache(maxsize=8192)
def _fold(text: str) -> str:
    """Case-fold ``text`` and strip diacritics (NFD, then drop combining marks)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped).lower()


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens the way FTS5 ``unicode61 remove_diacritics 2`` does.

    Tokens are lower-cased, diacritics are removed ("Café" -> "cafe") and every character that
    is not a letter or a digit separates tokens (so "Caroline's" -> ["caroline", "s"] and
    "e-mail" -> ["e", "mail"]).

    >>> tokenize("Hey Mel! Café's open, 2023.")
    ['hey', 'mel', 'cafe', 's', 'open', '2023']
    """
    if not text:
        return []
    if text.isascii():
        return _ASCII_TOKEN_RE.findall(text.lower())
    return _TOKEN_RE.findall(_fold(text))


# Snowball stemmer objects keep per-call state, so calls are serialised (they are cached anyway).
_STEMMER = snowballstemmer.stemmer("porter")
_STEMMER_LOCK = threading.Lock()


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Porter-stem one (already tokenised, lower-case) word like FTS5's ``porter`` tokenizer.

    Words shorter than 3 or longer than 64 characters are returned unchanged, as FTS5 does.

    >>> stem("running"), stem("memories"), stem("is")
    ('run', 'memori', 'is')
    """
    if len(word) < _PORTER_MIN_LEN or len(word) > _PORTER_MAX_LEN:
        return word
    if word.isascii() and word.isdigit():  # no Porter rule matches digits: skip the stemmer
        return word
    with _STEMMER_LOCK:
        result: str = _STEMMER.stemWord(word)
    return result


def analyze(text: str) -> list[str]:
    """Tokenise and stem ``text`` (stop-words are kept, as in the FTS5 index)."""
    return [stem(token) for token in tokenize(text)]


# --------------------------------------------------------------------------------------------
# Stop-words and query terms
# --------------------------------------------------------------------------------------------

_STOP_WORDS_TEXT = """
    a about above after again against all also am an and any are aren as at
    be because been before being below between both but by
    can cannot could couldn
    d did didn do does doesn doing don down during
    each either else ever every
    few for from further
    get gets got
    had hadn has hasn have haven having he her here hers herself him himself his how
    i if in into is isn it its itself
    just
    least let ll
    m many may me might more most much must mustn my myself
    neither no nor not now
    o of off on once only or other ought our ours ourselves out over own
    re
    s same shall shan she should shouldn so some such
    t than that the their theirs them themselves then there these they this those through
    to too
    under until up upon us
    ve very
    was wasn we were weren what whatever when whenever where whereas wherever whether which
    while who whoever whom whose why will with would wouldn
    y yet you your yours yourself yourselves
"""

STOP_WORDS: frozenset[str] = frozenset(_STOP_WORDS_TEXT.split())
"""General English stop-words (function words, auxiliaries, pronouns, question words).

Lower-case and diacritic-free, i.e. comparable with :func:`tokenize` output. Contractions are
covered through their tokenised pieces ("didn't" -> "didn", "t")."""


def query_terms(query: str) -> list[str]:
    """Return the keywords of a free-text query: normalised, stop-words removed, de-duplicated.

    The words are returned as tokenised (not stemmed, order of first occurrence kept): a
    store whose full-text index stems at index time (FTS5 ``porter``) stems them itself.

    >>> query_terms("When did Caroline go to the LGBTQ support group?")
    ['caroline', 'go', 'lgbtq', 'support', 'group']
    """
    seen: set[str] = set()
    terms: list[str] = []
    for token in tokenize(query):
        if token in STOP_WORDS or token in seen:
            continue
        seen.add(token)
        terms.append(token)
    return terms


# Irregular inflections that stemming cannot join ("went" vs "go", "children" vs "child").
# Forms that are also common unrelated words ("lay", "rose", "ground", "tear", ...) and forms
# that are stop-words ("did", "got", "had") are left out on purpose.
_IRREGULAR_TEXT = """
    arise arose arisen | awake awoke awoken | beat beaten | become became | begin began begun
    bend bent | bite bit bitten | bleed bled | blow blew blown | break broke broken | breed bred
    bring brought | build built | burn burnt | buy bought | catch caught | choose chose chosen
    cling clung | come came | creep crept | deal dealt | dig dug | draw drew drawn
    dream dreamt | drink drank drunk | drive drove driven | eat ate eaten | fall fell fallen
    feed fed | feel felt | fight fought | find found | flee fled | fly flew flown
    forbid forbade forbidden | forget forgot forgotten | forgive forgave forgiven
    freeze froze frozen | give gave given | go went gone | grow grew grown | hang hung
    hear heard | hide hid hidden | hold held | keep kept | kneel knelt | know knew known
    lead led | leap leapt | learn learnt | leave left | lend lent | light lit | lose lost
    make made | mean meant | meet met | pay paid | ride rode ridden | ring rang rung | run ran
    say said | see saw seen | seek sought | sell sold | send sent | shake shook shaken
    shine shone | shoot shot | show shown | shrink shrank shrunk | sing sang sung
    sink sank sunk | sit sat | sleep slept | slide slid | speak spoke spoken | spend spent
    spin spun | stand stood | steal stole stolen | stick stuck | sting stung | strike struck
    swear swore sworn | sweep swept | swim swam swum | swing swung | take took taken
    teach taught | tell told | think thought | throw threw thrown | understand understood
    wake woke woken | wear wore worn | weep wept | win won | withdraw withdrew withdrawn
    write wrote written
    child children | person people | man men | woman women | mouse mice | foot feet
    tooth teeth | goose geese
"""


def _word_forms() -> dict[str, tuple[str, ...]]:
    forms: dict[str, tuple[str, ...]] = {}
    for group in _IRREGULAR_TEXT.split("|"):
        words = tuple(dict.fromkeys(group.split()))
        for word in words:
            forms[word] = tuple(other for other in words if other != word)
    return forms


_WORD_FORMS: dict[str, tuple[str, ...]] = _word_forms()


def word_variants(word: str) -> tuple[str, ...]:
    """Other inflections of an irregular English word that stemming does not conflate.

    >>> word_variants("went"), word_variants("children"), word_variants("walked")
    (('go', 'gone'), ('child',), ())
    """
    return _WORD_FORMS.get(word, ())


# --------------------------------------------------------------------------------------------
# Time expressions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A half-open UTC time range ``[since, until)`` recognised in a query.

    ``query`` is the query text with the recognised phrases removed and ``phrases`` the
    phrases as they appeared in the query (in order). ``relative`` is true when at least one
    phrase was relative to *now* ("yesterday", "3 days ago") rather than absolute ("in 2022").
    """

    since: datetime
    until: datetime
    query: str
    phrases: tuple[str, ...]
    relative: bool

    def contains(self, when: datetime) -> bool:
        """Whether ``when`` (naive datetimes are taken as UTC) falls inside the window."""
        return self.since <= _as_utc(when) < self.until


_MONTHS: dict[str, int] = {}
for _number in range(1, 13):
    _MONTHS[calendar.month_name[_number].lower()] = _number
    _MONTHS[calendar.month_abbr[_number].lower()] = _number
_MONTHS["sept"] = 9

_WEEKDAYS: dict[str, int] = {calendar.day_name[i].lower(): i for i in range(7)}

_NUMBER_WORDS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "couple of": 2,
    "a couple of": 2,
}

# Full month names only for "in <Month>" (abbreviations such as "mar"/"jan" are too ambiguous
# without a year); with a year the abbreviations are accepted.
_MONTH_FULL = "|".join(calendar.month_name[i].lower() for i in range(1, 13))
_MONTH_ANY = "|".join(sorted(_MONTHS, key=len, reverse=True))
_NUMBER = r"\d{1,3}|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
_YEAR = r"(?:19|20)\d{2}"
_WEEKDAY = "|".join(_WEEKDAYS)

_DAY = r"(?P<day>[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "iso_date",
        re.compile(r"\b(?P<year>(?:19|20)\d{2})-(?P<month>0[1-9]|1[0-2])-(?P<day>[0-2]\d|3[01])\b"),
    ),
    (
        "date",
        re.compile(
            rf"\b{_DAY}\s+(?:of\s+)?(?P<month>{_MONTH_ANY})\.?,?\s+(?P<year>{_YEAR})\b", re.I
        ),
    ),
    (
        "date",
        re.compile(rf"\b(?P<month>{_MONTH_ANY})\.?\s+{_DAY},?\s+(?P<year>{_YEAR})\b", re.I),
    ),
    (
        "month_year",
        re.compile(rf"\b(?:in|during)\s+(?P<month>{_MONTH_ANY})\.?,?\s+(?P<year>{_YEAR})\b", re.I),
    ),
    ("month", re.compile(rf"\b(?:in|during)\s+(?P<month>{_MONTH_FULL})\b(?!\s*\d)", re.I)),
    ("year", re.compile(rf"\b(?:in|during)\s+(?P<year>{_YEAR})\b", re.I)),
    ("ago", re.compile(rf"\b(?P<n>{_NUMBER})\s+(?P<unit>day|week|month|year)s?\s+ago\b", re.I)),
    ("last_weekday", re.compile(rf"\blast\s+(?P<weekday>{_WEEKDAY})\b", re.I)),
    ("last", re.compile(r"\blast\s+(?P<unit>week|weekend|month|year)\b", re.I)),
    ("this", re.compile(r"\bthis\s+(?P<unit>week|weekend|month|year)\b", re.I)),
    ("yesterday", re.compile(r"\byesterday\b", re.I)),
    ("today", re.compile(r"\btoday\b", re.I)),
]


def _as_utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _day_start(when: datetime) -> datetime:
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def _add_months(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _month_window(year: int, month: int) -> tuple[datetime, datetime]:
    next_year, next_month = _add_months(year, month, 1)
    return _month_start(year, month), _month_start(next_year, next_month)


def _parse_number(text: str) -> int:
    text = " ".join(text.lower().split())
    if text.isdigit():
        return int(text)
    return _NUMBER_WORDS[text]


def _window_for(kind: str, match: re.Match[str], now: datetime) -> tuple[datetime, datetime]:
    """Return the ``[since, until)`` window of one recognised phrase."""
    today = _day_start(now)
    if kind in ("date", "iso_date"):
        month = match["month"]
        number = int(month) if month.isdigit() else _MONTHS[month.lower()]
        start = datetime(int(match["year"]), number, 1, tzinfo=UTC)
        day = min(int(match["day"]), calendar.monthrange(start.year, number)[1])
        start = start.replace(day=max(day, 1))
        return start, start + timedelta(days=1)
    if kind == "month_year":
        return _month_window(int(match["year"]), _MONTHS[match["month"].lower()])
    if kind == "month":
        month = _MONTHS[match["month"].lower()]
        # The most recent such month that has started (this year's, or last year's).
        year = now.year if month <= now.month else now.year - 1
        return _month_window(year, month)
    if kind == "year":
        year = int(match["year"])
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    if kind == "ago":
        n = _parse_number(match["n"])
        unit = match["unit"].lower()
        if unit == "day":
            start = today - timedelta(days=n)
            return start, start + timedelta(days=1)
        if unit == "week":
            centre = today - timedelta(weeks=n)
            return centre - timedelta(days=3), centre + timedelta(days=4)
        if unit == "month":
            year, month = _add_months(now.year, now.month, -n)
            return _month_window(year, month)
        return datetime(now.year - n, 1, 1, tzinfo=UTC), datetime(
            now.year - n + 1, 1, 1, tzinfo=UTC
        )
    if kind == "last_weekday":
        weekday = _WEEKDAYS[match["weekday"].lower()]
        back = (today.weekday() - weekday) % 7 or 7
        start = today - timedelta(days=back)
        return start, start + timedelta(days=1)
    if kind in ("last", "this"):
        unit = match["unit"].lower()
        shift = -1 if kind == "last" else 0
        if unit in ("week", "weekend"):
            monday = today - timedelta(days=today.weekday()) + timedelta(weeks=shift)
            if unit == "weekend":
                saturday = monday + timedelta(days=5)
                return saturday, saturday + timedelta(days=2)
            return monday, monday + timedelta(weeks=1)
        if unit == "month":
            year, month = _add_months(now.year, now.month, shift)
            return _month_window(year, month)
        year = now.year + shift
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    if kind == "yesterday":
        return today - timedelta(days=1), today
    # today
    return today, today + timedelta(days=1)


def extract_time_window(query: str, now: datetime) -> TimeWindow | None:
    """Recognise unambiguous time expressions in ``query`` relative to ``now``.

    Recognised (case-insensitive): "today", "yesterday", "this/last week|weekend|month|year",
    "last <weekday>", "N days/weeks/months/years ago" (N as digits or "two", "a couple of", ...),
    "in <Month>" (the most recent such month that has started), "in <Month> <year>",
    "in <year>" ("during" works like "in") and full dates ("8 May, 2023", "May 8th 2023",
    "2023-05-08"), which become that day. Anything else ("recently", "on Monday", bare
    dates, "before X") is left alone on purpose.

    Several phrases are combined into the smallest window covering all of them. ``now``
    may be naive (taken as UTC) or aware; the returned window is in UTC. Returns ``None`` when
    no phrase is recognised.

    >>> w = extract_time_window("what did I buy yesterday?", datetime(2024, 3, 10, 15, tzinfo=UTC))
    >>> (w.since.isoformat(), w.until.isoformat(), w.query)
    ('2024-03-09T00:00:00+00:00', '2024-03-10T00:00:00+00:00', 'what did I buy ?')
    """
    now = _as_utc(now)
    spans: list[tuple[int, int, str, tuple[datetime, datetime]]] = []
    relative = False
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(query):
            start, end = match.span()
            if any(start < s_end and s_start < end for s_start, s_end, _, _ in spans):
                continue  # overlaps a phrase already recognised by a more specific pattern
            spans.append((start, end, match.group(0), _window_for(kind, match, now)))
            if kind not in ("date", "iso_date", "month_year", "year"):
                relative = True
    if not spans:
        return None
    spans.sort(key=lambda item: item[0])
    since = min(window[0] for *_, window in spans)
    until = max(window[1] for *_, window in spans)
    pieces: list[str] = []
    cursor = 0
    for start, end, _, _ in spans:
        pieces.append(query[cursor:start])
        cursor = end
    pieces.append(query[cursor:])
    remainder = " ".join("".join(pieces).split())
    return TimeWindow(
        since=since,
        until=until,
        query=remainder,
        phrases=tuple(phrase for _, _, phrase, _ in spans),
        relative=relative,
    )
