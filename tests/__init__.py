"""The test suite. Shared helpers live in `tests.support`."""

import pytest

# Plain asserts in the shared helpers report their values as they would in a test module (the
# package must be registered before its first import).
pytest.register_assert_rewrite("tests.support")
