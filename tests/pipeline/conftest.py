"""Pipeline fixtures (defined in tests/support/pipeline.py, which other suites share): committed
data, a real HTTPS sandbox org per test process, an in-process `Pipeline` driven step by step, and
real Celery workers on a private Redis."""

from tests.support.pipeline import (  # noqa: F401  # fixtures
    make_worker,
    make_world,
    redis_server,
    sandbox,
    world,
)
