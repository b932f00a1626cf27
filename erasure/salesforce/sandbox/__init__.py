"""A Salesforce org you can run (docs/salesforce.md section 4): token endpoint, SOQL subset, engagement API.

Built on werkzeug directly; it imports nothing from the client side beyond pure helpers (ids,
route names). Start one with `run_in_thread()` (tests) or `erasure salesforce sandbox` (a person).
"""

from erasure.salesforce.sandbox.auth import AppConfig
from erasure.salesforce.sandbox.config import SandboxConfig
from erasure.salesforce.sandbox.limits import Fault
from erasure.salesforce.sandbox.org import SandboxOrg
from erasure.salesforce.sandbox.seed import SeededEndUser, add_end_user, seed_demo
from erasure.salesforce.sandbox.server import SandboxHandle, run_in_thread

__all__ = [
    "AppConfig",
    "Fault",
    "SandboxConfig",
    "SandboxHandle",
    "SandboxOrg",
    "SeededEndUser",
    "add_end_user",
    "run_in_thread",
    "seed_demo",
]
