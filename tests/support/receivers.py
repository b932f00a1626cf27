"""A real HTTP receiver on 127.0.0.1 that records what it gets and answers as told."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order, then `default`
    default: int = 204
    check: Callable[[Received], int | None] | None = None  # may answer instead (e.g. 401)


@contextmanager
def receiver(*, statuses: Iterable[int] = (), default: int = 204) -> Iterator[Receiver]:
    state = Receiver(url="", statuses=list(statuses), default=default)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        got = Received(
            request.method, request.full_path.rstrip("?"), dict(request.headers), request.get_data()
        )
        state.received.append(got)
        status = state.check(got) if state.check else None
        if status is None:
            status = state.statuses.pop(0) if state.statuses else state.default
        return Response(b"{}", status=status, mimetype="application/json")(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def blackhole() -> Iterator[str]:
    """The URL of an address that never answers: a socket on 127.0.0.1 that listens but never
    accepts, its one-slot accept queue already full, so every new connection attempt waits for
    a SYN-ACK that never comes (a connect timeout), like a firewalled or dead host."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(3):  # more than the queue holds: the rest keep retrying their SYN
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        probe = socket.create_connection
        deadline = time.monotonic() + 10
        while True:  # wait until the queue is full: a fresh connection attempt must time out
            try:
                probe(("127.0.0.1", port), timeout=0.3).close()
            except TimeoutError:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("could not fill the accept queue of the blackhole socket")
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
