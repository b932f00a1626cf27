"""The Salesforce sandbox org of `erasure standalone`, as a process of its own: seeded with the
demo subjects, with the execution users kept in the data directory, on a port that stays the same
for the whole run (the org's My Domain URL points at it). Its data lives in memory: a restart
brings the demo subjects back, as a fresh org would.

Run by the supervisor as `python -m erasure.standalone.sandbox_server --port P --data-dir D`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

from erasure.observability.logs import configure_logging
from erasure.salesforce.sandbox import SandboxOrg, seed_demo
from erasure.salesforce.sandbox.server import build_server
from erasure.standalone.datadir import DataDir, sandbox_credentials

logger = logging.getLogger("erasure.standalone.sandbox")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--data-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    configure_logging("INFO")
    data = DataDir(args.data_dir)
    org = SandboxOrg()
    with org.lock:
        seed_demo(org.data)
    for client_id, secret in sandbox_credentials(data):
        org.add_app(client_id, secret)
    server, url, _ = build_server(
        org, host=args.host, port=args.port, cert_dir=data.sandbox_dir, reuse_certificate=True
    )

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, name="sandbox-shutdown", daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    logger.info("sandbox org serving at %s", url)
    server.serve_forever()
    logger.info("sandbox org stopped")
    logging.shutdown()
    os._exit(0)  # nothing to save (its data lives in memory): skip the interpreter's teardown


if __name__ == "__main__":
    main()
