"""Schema-driven fuzzing: schemathesis generates valid and invalid requests from /openapi.json
for every operation and checks that none answers 5xx and every answer matches the documented schema.

The operations are driven with Hypothesis directly (schemathesis' own pytest plugin does not
support this pytest), so the app runs in-process on the test's savepoint-isolated session.
"""

from __future__ import annotations

import itertools
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as run_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.generation import GenerationMode
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.app import create_app
from erasure.config import Settings
from tests.support.web import KeyMaker

EXAMPLES = int(os.environ.get("ERASURE_FUZZ_EXAMPLES", "100"))
# CI runs the same cases every time (a red build names a real regression, not bad luck);
# ERASURE_FUZZ_RANDOM=1 explores new ones.
DERANDOMIZE = os.environ.get("ERASURE_FUZZ_RANDOM") != "1"

# What the fuzz run holds the API to: no 5xx, and every answer (status, content type, headers,
# body) is one the document declares. Not "every schema-valid body is accepted": a schema cannot
# say which phone numbers exist, so a well-formed but impossible one is rightly a 422.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


# About a minute of CPU; on a machine busy with the rest of the suite the wall time can pass the
# default 300 s timeout (which is there to catch hangs, not slow runs).
@pytest.mark.timeout(900)
def test_no_5xx_and_responses_match_the_schema(
    settings: Settings, db_session: Session, make_key: KeyMaker, org: object
) -> None:
    # Thousands of requests with one key: without the rate limit, so every case reaches a view.
    app = create_app(
        settings.model_copy(update={"rate_limit_requests": 0}), session_factory=lambda: db_session
    )
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {make_key(Role.ADMIN)}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8  # the whole API, not a subset
    cases = 0
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(mode))
        @run_settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=DERANDOMIZE,
        )
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal cases
            cases += 1
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            fuzz()
        except Unsatisfiable:
            # An operation with no parameters and no body has nothing to make invalid.
            if mode is not GenerationMode.NEGATIVE:
                raise
    assert cases >= len(operations) * 20  # thousands at the default EXAMPLES
