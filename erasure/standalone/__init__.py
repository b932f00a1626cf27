"""`erasure standalone`: the whole service on one machine, run by a small supervisor.

- `supervisor`: owns child processes, starts a dead one again with backoff, stops them in order.
- `services`: what standalone runs (the composition root) and `run`, which the CLI calls.
- `embedded`: the embedded Postgres and Redis as supervised services.
- `datadir`: the data directory, its generated secrets and the one-time bootstrap.
- `logfiles`: each process's JSON log file, rotated and private.
- `http_server`, `sandbox_server`: the API and sandbox processes' entry points.

Importing this package starts nothing and imports little: the API and sandbox processes import it
on their way to their own module.
"""

from __future__ import annotations

from pathlib import Path


def run(
    *, data_dir: Path, host: str, port: int, with_sandbox: bool = True, verbose: bool = False
) -> None:
    """Run standalone until SIGINT, SIGTERM or SIGHUP (see `services.run`)."""
    from erasure.standalone import services

    services.run(
        data_dir=data_dir, host=host, port=port, with_sandbox=with_sandbox, verbose=verbose
    )
