"""The HTTP/1.1 protocol memtrace serves with: Sanic's, plus absolute read deadlines.

Sanic's own ``REQUEST_TIMEOUT`` is an *idle* timeout that every received byte resets, and it
only covers the headers: headers trickled one byte at a time hold a socket forever, a stalled
body is only stopped by the response timeout (a 500/503 after 30 s), and a connection that
sends nothing waits for the keep-alive timeout. :class:`MemtraceProtocol` enforces, per
request (see ``[server]`` in docs/configuration.md):

``header_timeout``
    the request line and headers must be complete this many seconds after the request's first
    byte — for the first request of a connection, after the connection was opened;
``body_timeout``
    the longest pause while a body is being received;
``read_timeout``
    the whole request (headers and body) must be received within this time.

Each is answered with a 408 JSON error (when a request was started) and the connection is
closed. Everything else — keep-alive, the response timeout — is Sanic's behaviour unchanged.
"""

from __future__ import annotations

import sys
from time import monotonic as current_time
from typing import Any

from sanic.exceptions import RequestTimeout, ServiceUnavailable
from sanic.http import Http, Stage
from sanic.log import error_logger, logger
from sanic.server.protocols.http_protocol import HttpProtocol

#: Names of the Sanic config entries the protocol reads (set by ``create_app``).
HEADER_TIMEOUT = "MEMTRACE_HEADER_TIMEOUT"
BODY_TIMEOUT = "MEMTRACE_BODY_TIMEOUT"
READ_TIMEOUT = "MEMTRACE_READ_TIMEOUT"


class _Http(Http):
    """Notes when each request starts to be read (for the absolute deadlines)."""

    __slots__ = ()

    async def http1_request_header(self) -> None:
        protocol: Any = self.protocol
        protocol.note_request_start()
        await super().http1_request_header()  # type: ignore[no-untyped-call]


class MemtraceProtocol(HttpProtocol):
    HTTP_CLASS = _Http
    __slots__ = (
        "_opened",
        "_request_start",
        "_requests",
        "body_timeout",
        "header_timeout",
        "read_timeout",
    )

    def _setup(self) -> None:
        super()._setup()  # type: ignore[no-untyped-call]
        config = self.app.config
        self.header_timeout = float(config.get(HEADER_TIMEOUT, self.request_timeout))
        self.body_timeout = float(config.get(BODY_TIMEOUT, self.request_timeout))
        self.read_timeout = float(config.get(READ_TIMEOUT, self.request_timeout))
        self._opened = current_time()
        self._request_start: float | None = None
        self._requests = 0

    def note_request_start(self) -> None:
        # the first request of a connection counts from the connection (a client that connects
        # and sends one byte now and then must not get a fresh deadline per byte)
        self._request_start = self._opened if self._requests == 0 else current_time()
        self._requests += 1

    def _expired(self, now: float) -> str | None:
        """Why the request being read has run out of time, if it has."""
        http = self._http
        stage = http.stage
        if stage is Stage.IDLE:
            if self._requests == 0 and now - self._opened > self.header_timeout:
                return ""  # nothing was ever sent: close without an answer
            return None
        start = self._request_start
        if start is None:
            return None
        if stage is Stage.REQUEST:
            if now - start > self.header_timeout:
                return (
                    "request timeout: the request line and headers did not arrive within "
                    f"{self.header_timeout:g} s"
                )
            return None
        if stage is Stage.HANDLER and http.request_body and not http.upgrade_websocket:
            if now - self._time > self.body_timeout:
                return f"request timeout: the request body stalled for {self.body_timeout:g} s"
            if now - start > self.read_timeout:
                return f"request timeout: the request did not arrive within {self.read_timeout:g} s"
        return None

    def check_timeouts(self) -> None:
        """Sanic's periodic timeout check, with the deadlines above checked first."""
        try:
            if not self._task:
                return
            http = self._http
            now = current_time()
            reason = self._expired(now)
            if reason is None:
                duration = now - self._time
                stage = http.stage
                if stage is Stage.IDLE and duration > self.keep_alive_timeout:
                    logger.debug("KeepAlive Timeout. Closing connection.")
                elif stage is Stage.HANDLER and http.upgrade_websocket:
                    return
                elif (
                    stage in (Stage.HANDLER, Stage.RESPONSE, Stage.FAILED)
                    and not http.request_body
                    and duration > self.response_timeout
                ):
                    logger.debug("Response Timeout. Closing connection.")
                    http.exception = ServiceUnavailable("Response Timeout")
                else:
                    interval = min(
                        self.keep_alive_timeout,
                        self.response_timeout,
                        self.header_timeout,
                        self.body_timeout,
                        self.read_timeout,
                    )
                    self._callback_check_timeouts = self.loop.call_later(
                        max(0.05, interval / 2), self.check_timeouts
                    )
                    return
            elif reason:
                logger.debug("%s. Closing connection.", reason)
                http.exception = RequestTimeout(reason)
                # the rest of the body is not read (nor waited for) after the answer
                http.request_body = None
                http.keep_alive = False
            if sys.version_info < (3, 14):
                self._task.cancel("Cancel connection task with a timeout")
            else:  # pragma: no cover
                self._task.cancel()
        except Exception:
            error_logger.exception("protocol.check_timeouts")


__all__ = ["BODY_TIMEOUT", "HEADER_TIMEOUT", "READ_TIMEOUT", "MemtraceProtocol"]
