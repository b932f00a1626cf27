"""The API process of `erasure standalone`: the production Flask app, served by werkzeug with
deadlines on reading each request, and JSON logs like every other process.

Why werkzeug and not gunicorn here: neither times out a slow client by itself. Gunicorn's sync
workers give a whole worker to each connection until `--timeout` kills the worker (and whatever
else it was doing), and its gthread workers have no read deadline at all; its documentation asks
for a buffering proxy in front, which is what production has (docs/deployment.md). Standalone has
no proxy, so the deadlines live in the server: werkzeug's threaded server (one thread per
connection, one request per connection) with a reader that enforces a total deadline for the
request line and headers, then one for the body, whatever the pace of the bytes. A client that
sends headers a byte at a time is disconnected when its deadline passes; one whose body never
finishes is answered 408. Its thread ends either way.

Run by the supervisor as `python -m erasure.standalone.http_server --host H --port P`.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

from werkzeug.exceptions import RequestTimeout
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

logger = logging.getLogger("erasure.http")

#: After the answer's headers, how long what a client still sends is read and dropped.
DRAIN_S = 2.0


class _DeadlineReader(io.RawIOBase):
    """A socket reader with a deadline for the whole of a phase, not per read: a client cannot
    stretch it by sending one byte just before each read would time out."""

    def __init__(self, sock: socket.socket, write_timeout_s: float) -> None:
        self.sock = sock
        self.write_timeout_s = write_timeout_s
        self.deadline = float("inf")
        self.error: type[Exception] | None = TimeoutError
        self.expired = False

    def arm(self, seconds: float, error: type[Exception]) -> None:
        self.deadline = time.monotonic() + seconds
        self.error = error

    def drain(self, seconds: float) -> None:
        """The answer is on its way: what is read from now on is only drained (so the client
        sees the answer rather than a reset), briefly, and running out of time is no error."""
        self.deadline = min(self.deadline, time.monotonic() + seconds)
        self.error = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.expired:
            return 0  # after the deadline, the request is over: no more bytes are read
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return self._expire()
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv_into(buffer)
        except TimeoutError:
            return self._expire()
        finally:
            # Writing the answer has its own bound (sendall honours the socket's timeout).
            self.sock.settimeout(self.write_timeout_s)

    def _expire(self) -> int:
        self.expired = True
        if self.error is None:
            return 0
        raise self.error


class DeadlineRequestHandler(WSGIRequestHandler):
    """werkzeug's handler with read deadlines; its access log carries no query string."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0

    def setup(self) -> None:
        super().setup()
        self.deadline_reader = _DeadlineReader(self.connection, self.body_timeout_s)
        # Headers: http.server closes the connection on a TimeoutError while reading them.
        self.deadline_reader.arm(self.header_timeout_s, TimeoutError)
        self.rfile = io.BufferedReader(self.deadline_reader)

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        if parsed:
            # The body: the app reading it gets werkzeug's 408, which it answers like any HTTP
            # error (problem+json), and the connection closes after the answer.
            self.deadline_reader.arm(self.body_timeout_s, RequestTimeout)
        return parsed

    def end_headers(self) -> None:
        super().end_headers()
        self.deadline_reader.drain(DRAIN_S)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.info("%s %s -> %s", self.command, self.path.split("?", 1)[0], code)

    def log_error(self, format: str, *args: Any) -> None:  # http.server's signature
        # e.g. "Request timed out": say what happened, never what the client sent.
        logger.info("connection closed: %s", format.split(":", 1)[0].split("%", 1)[0].strip())

    def log(self, type: str, message: str, *args: Any) -> None:  # werkzeug's signature
        logger.info("http server: %s", type)


def make_api_server(
    host: str, port: int, app: Any, *, header_timeout_s: float, body_timeout_s: float
) -> BaseWSGIServer:
    handler = type(
        "ApiRequestHandler",
        (DeadlineRequestHandler,),
        {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s},
    )
    return make_server(host, port, app, threaded=True, request_handler=handler)


def main(argv: list[str] | None = None) -> None:
    from erasure.app import create_app
    from erasure.config import Settings
    from erasure.observability.logs import configure_logging

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    server = make_api_server(
        args.host,
        args.port,
        create_app(settings),
        header_timeout_s=settings.http_header_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
    )

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return: never call it from its own thread.
        threading.Thread(target=server.shutdown, name="http-shutdown", daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    logger.info("serving the API on %s:%d", args.host, server.port)
    server.serve_forever()
    logger.info("API stopped")
    # Requests still in flight (daemon threads) end with the process; the database sees closed
    # connections. Skipping the interpreter's teardown keeps the stop quick on a busy machine.
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()
