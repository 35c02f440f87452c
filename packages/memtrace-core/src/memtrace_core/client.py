"""The HTTP transport: :class:`AsyncMemtraceClient` and its blocking twin :class:`MemtraceClient`
serve the same methods as :class:`~memtrace_core.engine.AsyncMemtrace` /
:class:`~memtrace_core.sync.Memtrace`, over a memtrace server, returning the same models and
raising the same exceptions. ``connect("http://host:9100", api_key=…)`` returns one.

The org is chosen by the API key, so :meth:`AsyncMemtraceClient.with_org` is not available.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json as jsonlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from .errors import (
    STATUS_TO_ERROR,
    ConflictError,
    DuplicateMemoryError,
    MemtraceError,
    SupersededError,
    TransportError,
    ValidationError,
)
from .feed import WatchStream
from .models import (
    Activity,
    ActivityQuery,
    Agent,
    AgentContext,
    AgentList,
    AgentStats,
    BatchResult,
    ContextOptions,
    CreateSessionRequest,
    DeleteFilter,
    ImportResult,
    ListOptions,
    Memory,
    MemoryCreate,
    MemoryList,
    MemorySummary,
    NamespaceList,
    PopResult,
    RegisterAgentRequest,
    RetentionInfo,
    RetentionPolicy,
    RetentionReport,
    SearchQuery,
    SearchResult,
    Session,
    SessionContext,
    SessionList,
    StreamEvent,
    SummaryQuery,
    UpdateSessionRequest,
    WatchOptions,
)
from .shortcuts import Shortcuts
from .sync import BlockingMethods, Portal
from .timeutil import format_dt
from .validation import (
    check_batch,
    check_export_criteria,
    check_pop_criteria,
    check_query_lists,
    check_ref,
    coerce,
    merge_item,
)

M = TypeVar("M", bound=BaseModel)

DEFAULT_TIMEOUT = 30.0
_API = "/api/v1"


def _error_from_response(response: httpx.Response) -> MemtraceError:
    status = response.status_code
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]:
        message: str = body["error"]
    else:
        body = body if isinstance(body, dict) else {}
        message = response.text.strip() or f"HTTP {status}"
    if status == 400:
        field = body.get("field")
        err = ValidationError(message, field=field if isinstance(field, str) else None)
        index = body.get("index")
        if isinstance(index, int):
            err.index = index  # the server's message already names the item
        return err
    if status == 409:
        existing = body.get("existing_id")
        if isinstance(existing, str) and existing:
            key = body.get("dedup_key")
            return DuplicateMemoryError(existing, key if isinstance(key, str) else None)
        current = body.get("current_id")
        if isinstance(current, str) and current:
            return SupersededError(None, current, message=message)
        return ConflictError(message)
    cls = STATUS_TO_ERROR.get(status)
    if cls is not None:
        return cls(message)
    return MemtraceError(message, status_code=status)


def _jsonable(value: Any) -> Any:
    try:
        return to_jsonable_python(value)
    except PydanticSerializationError as exc:
        raise ValidationError(f"value is not JSON-serialisable: {exc}", field="body") from None


def _as_of(as_of: str | datetime | None) -> dict[str, str] | None:
    """The ``as_of`` query parameter (a datetime is sent as RFC 3339; naive = UTC)."""
    if as_of is None:
        return None
    return {"as_of": format_dt(as_of) if isinstance(as_of, datetime) else str(as_of)}


#: A request body above this size gets a hint about the server's body limit when the
#: connection drops while it is sent.
_LARGE_BODY = 1024 * 1024


def _encode_json(body: Any) -> bytes:
    """A request body as JSON (UTF-8). What JSON cannot carry is refused as the engine refuses
    it, before anything is sent: a NaN or an infinity, text that is not valid Unicode (a lone
    surrogate)."""
    try:
        return jsonlib.dumps(
            body, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
    except ValueError as exc:
        if isinstance(exc, UnicodeEncodeError):
            raise ValidationError(
                "invalid request: text that is not valid Unicode (a lone surrogate)"
            ) from None
        raise ValidationError(
            "invalid request: a number that is not finite (NaN or infinity)"
        ) from None


def _body(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


def _delete_body(crit: DeleteFilter) -> dict[str, Any]:
    """A DeleteFilter's body; ``all_versions`` only when true (a server from before it existed
    still takes every other delete)."""
    body = _body(crit)
    if not crit.all_versions:
        body.pop("all_versions", None)
    return body


def _params(model: BaseModel, *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    check_query_lists(model)  # an empty list cannot travel in a query string
    out: dict[str, str] = {}
    for key, value in model.model_dump(mode="json", exclude_none=True).items():
        if key in drop:
            continue
        if isinstance(value, list):
            if "" in value:  # would vanish from the query string: refused as the engine does
                raise ValidationError(f"invalid {key}: an empty value", field=key)
            if value:
                out[key] = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


def _seg(value: str, field: str) -> str:
    check_ref(value, field)
    return quote(value, safe="")


class AsyncMemtraceClient(Shortcuts):
    """An async client for a memtrace server, with the method set of
    :class:`~memtrace_core.engine.AsyncMemtrace`.

    Args:
        base_url: the server, e.g. ``http://localhost:9100``.
        api_key: an API key (``mtk_…``); sent as ``x-api-key``. Optional when the server runs
            with auth disabled.
        timeout: seconds per request (connect, read, write).
        transport: an httpx transport (tests, custom TLS, retries).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json"}
        if api_key:
            headers["x-api-key"] = api_key
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> AsyncMemtraceClient:
        return self

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMemtraceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def with_org(self, org_id: str) -> AsyncMemtraceClient:
        """Not available over HTTP: the server takes the org from the API key."""
        raise MemtraceError(
            "with_org is not supported by the HTTP client: the org is chosen by the API key "
            "(use a key of that org)",
            status_code=0,
        )

    # -- plumbing -------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if json is not None:
            content = _encode_json(json)
            headers = {**(headers or {}), "content-type": "application/json"}
        try:
            response = await self._http.request(
                method, _API + path, params=params, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            hint = ""
            if content is not None and len(content) > _LARGE_BODY:
                # a server refuses a body over its max_body_bytes with a 413 and closes the
                # connection, which the sender often sees as a dropped connection instead
                hint = (
                    f" (the request body was {len(content):,} bytes: a server whose "
                    "max_body_bytes is lower refuses it and closes the connection)"
                )
            raise TransportError(f"{method} {self.base_url}{_API}{path}: {exc!r}{hint}") from exc
        if response.status_code >= 400:
            raise _error_from_response(response)
        return response

    async def _get(self, model: type[M], path: str, params: Mapping[str, str] | None = None) -> M:
        response = await self._request("GET", path, params=params)
        return model.model_validate_json(response.content)

    async def _send(self, model: type[M], method: str, path: str, body: Any) -> M:
        response = await self._request(method, path, json=body)
        return model.model_validate_json(response.content)

    # -- writing --------------------------------------------------------------------------------

    async def add_memory(
        self, memory: MemoryCreate | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> Memory:
        """Write one memory (see :meth:`AsyncMemtrace.add_memory`)."""
        item = merge_item(memory, fields)
        body = _body(item) if isinstance(item, BaseModel) else _jsonable(dict(item))
        if isinstance(body, dict) and "memories" in body:
            body.pop("memories")  # would turn the request into a batch
        return await self._send(Memory, "POST", "/memories", body)

    async def add_memories(
        self, memories: Sequence[MemoryCreate | Mapping[str, Any]]
    ) -> BatchResult:
        """Write a batch atomically (see :meth:`AsyncMemtrace.add_memories`)."""
        check_batch(memories)
        if not memories:
            return BatchResult(memories=[], count=0)
        items = [_body(m) if isinstance(m, BaseModel) else _jsonable(m) for m in memories]
        return await self._send(BatchResult, "POST", "/memories", {"memories": items})

    # -- reading --------------------------------------------------------------------------------

    async def list_memories(
        self, options: ListOptions | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> MemoryList:
        opts = coerce(ListOptions, options, filters)
        return await self._get(MemoryList, "/memories", _params(opts))

    async def search_memories(
        self, query: SearchQuery | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> SearchResult:
        q = coerce(SearchQuery, query, fields)
        return await self._send(SearchResult, "POST", "/search", _body(q))

    async def get_memory(self, memory_id: str, *, as_of: str | datetime | None = None) -> Memory:
        return await self._get(Memory, f"/memories/{_seg(memory_id, 'id')}", _as_of(as_of))

    async def get_memory_by_key(
        self, namespace: Sequence[str], key: str, *, as_of: str | datetime | None = None
    ) -> Memory:
        body: dict[str, Any] = {"namespace": list(namespace), "key": key}
        if as_of is not None:
            body["as_of"] = format_dt(as_of) if isinstance(as_of, datetime) else as_of
        return await self._send(Memory, "POST", "/memories/by-key", body)

    async def list_namespaces(
        self,
        *,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> NamespaceList:
        body = {
            "prefix": None if prefix is None else list(prefix),
            "suffix": None if suffix is None else list(suffix),
            "max_depth": max_depth,
            "limit": limit,
            "offset": offset,
        }
        clean = {k: v for k, v in body.items() if v is not None}
        return await self._send(NamespaceList, "POST", "/namespaces", clean)

    async def delete_memory(self, memory_id: str) -> None:
        await self._request("DELETE", f"/memories/{_seg(memory_id, 'id')}")

    async def delete_memories(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> int:
        crit = coerce(DeleteFilter, criteria, fields)
        response = await self._request("POST", "/memories/delete", json=_delete_body(crit))
        return int(response.json()["deleted"])

    async def pop_memory(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> Memory | None:
        crit = coerce(DeleteFilter, criteria, filters)
        check_pop_criteria(crit)
        return (await self._send(PopResult, "POST", "/memories/pop", _delete_body(crit))).memory

    async def summarize_memories(
        self, filters: SummaryQuery | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> MemorySummary:
        q = coerce(SummaryQuery, filters, fields)
        return await self._send(MemorySummary, "POST", "/memories/summary", _body(q))

    # -- agents ---------------------------------------------------------------------------------

    async def register_agent(
        self,
        request: RegisterAgentRequest | Mapping[str, Any] | str | None = None,
        /,
        **fields: Any,
    ) -> Agent:
        req = coerce(RegisterAgentRequest, request, fields, positional="name")
        return await self._send(Agent, "POST", "/agents", _body(req))

    async def list_agents(self) -> AgentList:
        return await self._get(AgentList, "/agents")

    async def get_agent(self, agent_id: str) -> Agent:
        return await self._get(Agent, f"/agents/{_seg(agent_id, 'agent_id')}")

    async def delete_agent(self, agent_id: str, *, delete_memories: bool = False) -> None:
        params = {"delete_memories": "true"} if delete_memories else None
        await self._request("DELETE", f"/agents/{_seg(agent_id, 'agent_id')}", params=params)

    async def get_agent_stats(
        self, agent_id: str, *, as_of: str | datetime | None = None
    ) -> AgentStats:
        path = f"/agents/{_seg(agent_id, 'agent_id')}/stats"
        return await self._get(AgentStats, path, _as_of(as_of))

    async def get_activity(
        self, options: ActivityQuery | Mapping[str, Any] | None = None, /, **filters: Any
    ) -> Activity:
        q = coerce(ActivityQuery, options, filters)
        return await self._get(Activity, "/activity", _params(q))

    async def get_agent_memories(
        self,
        agent_id: str,
        options: ListOptions | Mapping[str, Any] | None = None,
        /,
        **filters: Any,
    ) -> MemoryList:
        opts = coerce(ListOptions, options, filters)
        path = f"/agents/{_seg(agent_id, 'agent_id')}/memories"
        return await self._get(MemoryList, path, _params(opts, drop=("agent_id",)))

    async def get_agent_context(
        self,
        agent_id: str,
        options: ContextOptions | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> AgentContext:
        opts = coerce(ContextOptions, options, fields)
        path = f"/agents/{_seg(agent_id, 'agent_id')}/context"
        return await self._send(AgentContext, "POST", path, _body(opts))

    # -- sessions -------------------------------------------------------------------------------

    async def create_session(
        self,
        request: CreateSessionRequest | Mapping[str, Any] | str | None = None,
        /,
        **fields: Any,
    ) -> Session:
        req = coerce(CreateSessionRequest, request, fields, positional="agent_id")
        return await self._send(Session, "POST", "/sessions", _body(req))

    async def get_session(self, session_id: str) -> Session:
        return await self._get(Session, f"/sessions/{_seg(session_id, 'session_id')}")

    async def list_sessions(
        self,
        agent_id: str | None = None,
        *,
        status: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> SessionList:
        params: dict[str, str] = {}
        for key, value in (
            ("agent_id", agent_id),
            ("status", status),
            ("limit", limit),
            ("offset", offset),
        ):
            if value is not None and value != "":
                params[key] = str(value)
        return await self._get(SessionList, "/sessions", params)

    async def update_session(
        self,
        session_id: str,
        request: UpdateSessionRequest | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> Session:
        req = coerce(UpdateSessionRequest, request, fields)
        body = req.model_dump(mode="json", exclude_unset=True)
        path = f"/sessions/{_seg(session_id, 'session_id')}"
        return await self._send(Session, "PATCH", path, body)

    async def close_session(self, session_id: str) -> Session:
        path = f"/sessions/{_seg(session_id, 'session_id')}"
        return await self._send(Session, "PUT", path, {"status": "closed"})

    async def delete_session(self, session_id: str, *, delete_memories: bool = False) -> None:
        params = {"delete_memories": "true"} if delete_memories else None
        path = f"/sessions/{_seg(session_id, 'session_id')}"
        await self._request("DELETE", path, params=params)

    async def get_session_memories(
        self,
        session_id: str,
        options: ListOptions | Mapping[str, Any] | None = None,
        /,
        **filters: Any,
    ) -> MemoryList:
        opts = coerce(ListOptions, options, filters)
        path = f"/sessions/{_seg(session_id, 'session_id')}/memories"
        return await self._get(MemoryList, path, _params(opts, drop=("session_id",)))

    async def get_session_context(
        self,
        session_id: str,
        options: ContextOptions | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> SessionContext:
        opts = coerce(ContextOptions, options, fields)
        path = f"/sessions/{_seg(session_id, 'session_id')}/context"
        return await self._send(SessionContext, "POST", path, _body(opts))

    # -- export / import ------------------------------------------------------------------------

    async def iter_export(
        self, criteria: DeleteFilter | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> AsyncIterator[str]:
        """JSON Lines from ``GET /api/v1/export``, streamed (each line ends with a newline)."""
        crit = coerce(DeleteFilter, criteria, fields)
        check_export_criteria(crit)
        params = _params(crit, drop=("all_memories", "all_versions"))
        url = _API + "/export"
        try:
            async with self._http.stream("GET", url, params=params) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error_from_response(response)
                async for line in response.aiter_lines():
                    if line:
                        yield line + "\n"
        except httpx.TransportError as exc:
            raise TransportError(f"GET {self.base_url}{url}: {exc!r}") from exc

    def watch(
        self,
        options: WatchOptions | Mapping[str, Any] | None = None,
        /,
        *,
        after: str | None = None,
        **filters: Any,
    ) -> WatchStream:
        """Follow new memories over ``GET /api/v1/memories/stream`` (see
        :meth:`AsyncMemtrace.watch`): an async iterator of StreamEvent that reconnects by
        itself after a dropped connection or a server restart and resumes with
        ``Last-Event-ID`` — nothing missed, nothing twice. A refused request (a bad filter or
        position, a revoked key) raises instead."""
        opts = coerce(WatchOptions, options, filters)
        if after is not None:
            opts = opts.model_copy(update={"after": after})
        return ClientWatch(self._http, self.base_url, _params(opts, drop=("after",)), opts.after)

    async def import_jsonl(
        self,
        lines: Iterable[str | bytes],
        *,
        batch_size: int = 500,
        require_trailer: bool = True,
    ) -> ImportResult:
        """Send JSON Lines to ``POST /api/v1/import`` (one request; ``batch_size`` is the
        server's business). Line numbers in errors count the given lines. The server verifies
        the export trailer before writing anything; ``require_trailer=False`` (``?no_trailer=
        true``) accepts a file without one (see :meth:`AsyncMemtrace.import_jsonl`)."""
        parts: list[bytes] = []
        for raw in lines:
            data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
            parts.append(data.rstrip(b"\r\n"))
        body = b"\n".join(parts)
        response = await self._request(
            "POST",
            "/import",
            content=body,
            params=None if require_trailer else {"no_trailer": "true"},
            headers={"Content-Type": "application/x-ndjson"},
        )
        return ImportResult.model_validate_json(response.content)

    async def purge_org(self) -> int:
        """Delete every memory, agent and session of the key's org (needs ``admin``)."""
        response = await self._request("POST", "/org/purge", json={})
        return int(response.json()["deleted"])

    # -- retention (the key's org; changing it needs ``admin``) ----------------------------------

    async def get_retention_policy(self) -> RetentionInfo:
        return await self._get(RetentionInfo, "/retention")

    async def set_retention_policy(
        self, policy: RetentionPolicy | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> RetentionInfo:
        pol = coerce(RetentionPolicy, policy, fields)
        return await self._send(RetentionInfo, "PUT", "/retention", pol.model_dump(mode="json"))

    async def clear_retention_policy(self) -> RetentionInfo:
        response = await self._request("DELETE", "/retention")
        return RetentionInfo.model_validate_json(response.content)

    async def apply_retention(self, *, dry_run: bool = False) -> RetentionReport:
        response = await self._request(
            "POST", "/retention/apply", params={"dry_run": "true"} if dry_run else None
        )
        return RetentionReport.model_validate_json(response.content)


async def _sse_lines(response: httpx.Response) -> AsyncIterator[str]:
    """The lines of an event stream, split only where the SSE format splits them (CRLF, LF or
    CR): not at U+2028, U+2029 or U+0085, which a memory may contain (httpx's
    ``aiter_lines`` splits there too)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer = ""
    async for chunk in response.aiter_bytes():
        buffer += decoder.decode(chunk)
        while True:
            lf, cr = buffer.find("\n"), buffer.find("\r")
            if cr >= 0 and (lf < 0 or cr < lf):
                if cr == len(buffer) - 1:
                    break  # perhaps the first half of a CRLF
                line = buffer[:cr]
                buffer = buffer[cr + 2 :] if buffer[cr + 1] == "\n" else buffer[cr + 1 :]
            elif lf >= 0:
                line, buffer = buffer[:lf], buffer[lf + 1 :]
            else:
                break
            yield line
    buffer += decoder.decode(b"", final=True)
    if buffer:
        yield buffer.removesuffix("\r")


class ClientWatch:
    """The live stream of a server as an async iterator of StreamEvent (see
    :meth:`AsyncMemtraceClient.watch`). :attr:`position` is the last position received (the
    ``ready`` event's at first); a reconnect resumes from it."""

    #: Seconds between reconnection attempts: doubled after each failure up to the maximum.
    RETRY_FIRST = 0.5
    RETRY_MAX = 10.0

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, params: dict[str, str], after: str | None
    ) -> None:
        self._http = http
        self._url = base_url + _API + "/memories/stream"
        self._params = params
        self.position = after
        self._response: httpx.Response | None = None
        self._stream: Any = None
        self._lines: AsyncIterator[str] | None = None
        self._closed = False
        self._connected = False  # once: later failures are retried

    async def start(self) -> ClientWatch:
        """Connect (a refused request raises here) and read the ``ready`` event."""
        if self._lines is None:
            await self._connect()
        return self

    async def _connect(self) -> None:
        headers = {"Accept": "text/event-stream"}
        if self.position is not None:
            headers["Last-Event-ID"] = self.position
        # a read waits at most for the server's next heartbeat (every 15 s)
        timeout = httpx.Timeout(30.0, read=60.0)
        stream = self._http.stream(
            "GET", self._url, params=self._params, headers=headers, timeout=timeout
        )
        try:
            response = await stream.__aenter__()
        except httpx.TransportError as exc:
            raise TransportError(f"GET {self._url}: {exc!r}") from exc
        if response.status_code >= 400:
            await response.aread()
            await stream.__aexit__(None, None, None)
            raise _error_from_response(response)
        self._stream, self._response = stream, response
        self._lines = _sse_lines(response)
        try:
            event, event_id, _ = await self._next_event()
        except BaseException:
            await self._disconnect()
            raise
        if event != "ready" or event_id is None:
            await self._disconnect()
            raise TransportError(f"GET {self._url}: not a memtrace stream (no ready event)")
        # the position the server starts from: a reconnect before any memory resumes here
        self.position = event_id
        self._connected = True

    async def _disconnect(self) -> None:
        stream, self._stream, self._response, self._lines = self._stream, None, None, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.__aexit__(None, None, None)

    async def _next_event(self) -> tuple[str, str | None, str]:
        """The next (event, id, data) of the open stream; raises EOFError at its end."""
        assert self._lines is not None
        event, event_id = "message", None
        data: list[str] = []
        async for line in self._lines:
            if not line:
                if data or event_id is not None:
                    return event, event_id, "\n".join(data)
                event = "message"
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
        raise EOFError("the stream ended")

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        delay = self.RETRY_FIRST
        try:
            if self._lines is None and not self._connected:
                await self._connect()  # the first connection's failure is the caller's
            while not self._closed:
                try:
                    if self._lines is None:
                        await self._connect()
                    event, event_id, data = await self._next_event()
                except EOFError:  # the server ended the stream: at once, then backing off
                    await self._disconnect()
                    if delay > self.RETRY_FIRST:
                        await asyncio.sleep(delay)
                    delay = min(delay * 2, self.RETRY_MAX)
                    continue
                except (httpx.TransportError, httpx.StreamError, TransportError):
                    await self._disconnect()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.RETRY_MAX)
                    continue
                except MemtraceError as exc:
                    if exc.status_code in (502, 503, 504):  # restarting, or a proxy's
                        await self._disconnect()
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self.RETRY_MAX)
                        continue
                    raise
                delay = self.RETRY_FIRST
                if event == "error":
                    await self._disconnect()
                    message = jsonlib.loads(data).get("error", data) if data else "stream error"
                    raise MemtraceError(str(message), status_code=401)
                if event_id is not None:
                    self.position = event_id
                if event == "memory":
                    yield StreamEvent(
                        position=event_id or "", memory=Memory.model_validate_json(data)
                    )
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        await self._disconnect()


class MemtraceClient(BlockingMethods[AsyncMemtraceClient]):
    """The blocking HTTP client: the same methods as :class:`~memtrace_core.sync.Memtrace`.

    >>> from memtrace_core import connect
    >>> mt = connect("http://localhost:9100", api_key="mtk_…")   # doctest: +SKIP
    >>> mt.remember("crawler", "Crawled example.com")             # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        portal = Portal()

        async def build() -> AsyncMemtraceClient:
            return AsyncMemtraceClient(base_url, api_key, timeout=timeout, transport=transport)

        try:
            client = portal.call(build())
        except BaseException:
            portal.close()
            raise
        super().__init__(client, portal)
        self._owns_portal = True

    def with_org(self, org_id: str) -> MemtraceClient:
        """Not available over HTTP: the server takes the org from the API key."""
        self._async.with_org(org_id)
        raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["AsyncMemtraceClient", "MemtraceClient"]
