"""The standalone HTTP server cuts off slow clients: a request whose headers (or body) do not
arrive within their bound is dropped (or answered 408), its thread ends, and every other client is
served meanwhile. Against the real server class on a real socket, with a small Flask app."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests
from flask import Flask, request
from werkzeug.serving import BaseWSGIServer

from erasure.standalone.http_server import make_api_server
from tests.support.standalone import wait_for

HEADER_BOUND_S = 1.0
BODY_BOUND_S = 1.5
TRICKLE_S = 60.0  # how long a slow client would go on: far past both bounds


def _app() -> Flask:
    app = Flask("slow-clients")

    @app.get("/")
    def index() -> str:
        return "ok"

    @app.post("/echo")
    def echo() -> str:
        return str(len(request.get_data()))

    return app


@pytest.fixture
def server() -> Iterator[BaseWSGIServer]:
    server = make_api_server(
        "127.0.0.1", 0, _app(), header_timeout_s=HEADER_BOUND_S, body_timeout_s=BODY_BOUND_S
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def _request_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def _trickle(conn: socket.socket, byte: bytes) -> bytes | None:
    """Send `byte` every 0.1 s for TRICKLE_S; return what the server said when it hung up
    (b"" for a plain close), or None if it never did."""
    rounds = int(TRICKLE_S / 0.1)
    conn.settimeout(0.1)
    for _ in range(rounds):
        try:
            conn.sendall(byte)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        try:
            return conn.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return b""
    return None


def _served_meanwhile(server: BaseWSGIServer) -> None:
    url = f"http://127.0.0.1:{server.port}"
    assert requests.get(url, timeout=10).text == "ok"
    assert requests.post(f"{url}/echo", data=b"x" * 50_000, timeout=10).text == "50000"


def test_headers_sent_one_byte_at_a_time_are_cut_off(server: BaseWSGIServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        _served_meanwhile(server)
        assert _trickle(conn, b"a") == b""  # hung up on, long before the client would stop
    wait_for(lambda: not _request_threads(), "the slow client's thread to end", timeout=30)
    _served_meanwhile(server)


def test_a_connection_that_never_sends_anything_is_closed(server: BaseWSGIServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.settimeout(TRICKLE_S)
        assert conn.recv(1) == b""
    wait_for(lambda: not _request_threads(), "the idle connection's thread to end", timeout=30)


def test_a_body_that_never_finishes_is_answered_408(server: BaseWSGIServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\nxx")
        _served_meanwhile(server)
        answer = _trickle(conn, b"x")
    assert answer is not None and answer.startswith(b"HTTP/1.1 408"), answer
    wait_for(lambda: not _request_threads(), "the slow body's thread to end", timeout=30)
    _served_meanwhile(server)
