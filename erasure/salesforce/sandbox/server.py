"""The sandbox over HTTPS: a werkzeug WSGI app for both hosts' paths, and thread/CLI runners.

ORG paths (`/services/...`) and API paths (`/platform/engagement/...`) are served by one server;
the token response points both `instance_url` and `api_instance_url` at it.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from erasure.salesforce.models import Route
from erasure.salesforce.sandbox import admin
from erasure.salesforce.sandbox.config import Reply
from erasure.salesforce.sandbox.org import SandboxOrg
from erasure.salesforce.sandbox.tls import (
    reuse_or_write_certificate,
    server_context,
    write_certificate,
)

logger = logging.getLogger("erasure.salesforce.sandbox")

ENGAGEMENT = "/platform/engagement/v1.0"

URLS = Map(
    [
        Rule("/services/oauth2/token", endpoint="token", methods=["POST"]),
        Rule("/services/data/", endpoint="versions", methods=["GET"]),
        Rule("/services/data/<version>/query", endpoint="query", methods=["GET"]),
        Rule("/services/data/<version>/search", endpoint="search", methods=["GET"]),
        Rule("/services/data/<version>/query/<locator>", endpoint="query_more", methods=["GET"]),
        Rule(
            f"{ENGAGEMENT}/conversation-participants",
            endpoint="delete_participants",
            methods=["DELETE"],
        ),
        Rule(f"{ENGAGEMENT}/conversations", endpoint="delete_conversations", methods=["DELETE"]),
        Rule(f"{ENGAGEMENT}/conversation-entries", endpoint="entries", methods=["GET"]),
        Rule("/platform/<path:rest>", endpoint="engagement_other"),
        Rule(
            f"{admin.PREFIX}/<path:action>",
            endpoint="admin",
            methods=["GET", "POST", "PATCH", "DELETE"],
        ),
    ],
    strict_slashes=False,
)


class SandboxApp:
    """The WSGI application around one `SandboxOrg`."""

    def __init__(self, org: SandboxOrg) -> None:
        self.org = org

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = URLS.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except HTTPException as exc:
            if request.path.startswith("/platform/"):
                return self.respond(self.org.not_found())
            return self.respond(
                Reply(
                    exc.code or 404,
                    [
                        {
                            "errorCode": "NOT_FOUND",
                            "message": "The requested resource does not exist",
                        }
                    ],
                )
            )
        reply = self.route(endpoint, values, request)
        if reply.latency_s:
            time.sleep(reply.latency_s)  # outside the org lock: other calls carry on meanwhile
        return self.respond(reply)

    def route(self, endpoint: str, values: Mapping[str, Any], request: Request) -> Reply:  # noqa: PLR0911 -- flat dispatch
        org = self.org
        auth = request.headers.get("Authorization")
        base_url = request.host_url.rstrip("/")
        if endpoint == "token":
            return org.token(request.form.to_dict(), base_url=base_url)
        if endpoint == "versions":
            return org.versions()
        if endpoint == "query":
            return org.query(values["version"], request.args.get("q"), auth)
        if endpoint == "search":
            return org.search(values["version"], request.args.get("q"), auth)
        if endpoint == "query_more":
            return org.query_more(values["version"], values["locator"], auth)
        if endpoint == "delete_participants":
            return org.delete(
                Route.DELETE_PARTICIPANTS, auth, request.get_data(), request.args.to_dict()
            )
        if endpoint == "delete_conversations":
            return org.delete(
                Route.DELETE_CONVERSATIONS, auth, request.get_data(), request.args.to_dict()
            )
        if endpoint == "entries":
            return org.entries(auth, request.args.to_dict())
        if endpoint == "admin":
            body = request.get_json(silent=True) if request.data else {}
            return admin.handle(org, request.method, values["action"], body or {})
        return org.not_found()

    @staticmethod
    def respond(reply: Reply) -> Response:
        body = "" if reply.body is None else json.dumps(reply.body)
        return Response(
            body, status=reply.status, headers=reply.headers, content_type="application/json"
        )


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's access log prints query strings, and ours carry SOQL with personal data."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("sandbox %s %s -> %s", self.command, self.path.split("?", 1)[0], code)

    def log(self, type: str, message: str, *args: Any) -> None:  # werkzeug's signature
        logger.debug("sandbox server %s", type)


@dataclass
class SandboxHandle:
    """A running sandbox: `url` serves both hosts; trust `ca_path` to talk to it."""

    url: str
    ca_path: str
    org: SandboxOrg
    server: BaseWSGIServer
    thread: threading.Thread
    tempdir: tempfile.TemporaryDirectory[str] | None

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
        if self.tempdir is not None:
            self.tempdir.cleanup()

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_server(
    org: SandboxOrg,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    cert_dir: Path,
    reuse_certificate: bool = False,
) -> tuple[BaseWSGIServer, str, Path]:
    """A threaded HTTPS server for `org`; `reuse_certificate` keeps a still-valid certificate
    found in `cert_dir` (a restarted sandbox stays trusted) instead of making a new one."""
    make_certificate = reuse_or_write_certificate if reuse_certificate else write_certificate
    cert_path, key_path = make_certificate(cert_dir)
    server = make_server(
        host,
        port,
        SandboxApp(org),
        threaded=True,
        request_handler=_QuietHandler,
        ssl_context=server_context(cert_path, key_path),
    )
    url = f"https://{host}:{server.port}"
    return server, url, cert_path


def run_in_thread(
    org: SandboxOrg | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    cert_dir: Path | None = None,
) -> SandboxHandle:
    """Start a sandbox in a daemon thread; `port=0` picks a free port. Call `.stop()` after."""
    org = org or SandboxOrg()
    tempdir = None
    if cert_dir is None:
        tempdir = tempfile.TemporaryDirectory(prefix="erasure-sandbox-")
        cert_dir = Path(tempdir.name)
    server, url, cert_path = build_server(org, host=host, port=port, cert_dir=cert_dir)
    thread = threading.Thread(target=server.serve_forever, name="salesforce-sandbox", daemon=True)
    thread.start()
    return SandboxHandle(url, str(cert_path), org, server, thread, tempdir)
