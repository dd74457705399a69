"""uvicorn's HTTP/1.1 protocol with the two timeouts it lacks: slow headers and a client that stops reading.

uvicorn closes a keep-alive connection idle for ``timeout_keep_alive``, but
a connection that opens and then sends its request line a byte at a time
("slowloris"), or a client that asks for a chromosome and never reads it,
holds its connection -- and, for the second, the response's worker -- for as
long as it likes. Two timers close that gap:

* a header deadline: ``header_timeout`` seconds after the connection opens,
  and after each response, a request's headers must have arrived, else the
  connection is closed;
* a send deadline: when the transport's write buffer is full (uvicorn's flow
  control pauses the response), the client has ``send_timeout`` seconds to
  drain it, else the connection is aborted; the response's iterator then
  stops at its next piece.

Written as a subclass because uvicorn takes a protocol class
(``Config(http=...)``) and has no hook for either timer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class TimedH11Protocol(H11Protocol):
    """:class:`H11Protocol` with the header and send deadlines of the module docstring.

    The deadlines are class attributes because uvicorn makes the protocol
    from its class; :func:`timed_protocol` makes a subclass with its own
    values, and a worker process (``serve --workers``) sets these from the
    settings it was started with (:func:`~talaria_storage.server.app.app_from_environment`).
    0 turns a deadline off.
    """

    header_timeout: float = 10.0
    send_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._send_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._header_deadline, self._send_deadline):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.send_timeout and self._send_deadline is None:
            self._send_deadline = self.loop.call_later(self.send_timeout, self._client_stopped_reading)

    def resume_writing(self) -> None:
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None
        super().resume_writing()

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        if self.header_timeout and not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self.logger.info("closing a connection that sent no complete request in %ss", self.header_timeout)
            self.transport.close()

    def _client_stopped_reading(self) -> None:
        self._send_deadline = None
        if not self.transport.is_closing():
            self.logger.info("aborting a connection that read nothing for %ss", self.send_timeout)
            self.transport.abort()


def timed_protocol(header_timeout: float, send_timeout: float) -> type[TimedH11Protocol]:
    """A :class:`TimedH11Protocol` subclass with these deadlines (for a server in this process)."""
    return type(
        "TimedH11Protocol", (TimedH11Protocol,), {"header_timeout": header_timeout, "send_timeout": send_timeout}
    )
