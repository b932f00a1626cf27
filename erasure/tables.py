"""Every table of every domain, so the metadata is complete: Alembic's env (migrations,
autogenerate, `alembic check`) imports this. Application code imports the models it uses
from the domain that owns them, never from here."""

from __future__ import annotations

from erasure.access import models as access
from erasure.accounts import models as accounts
from erasure.api import models as api
from erasure.audit import models as audit
from erasure.core import models as core
from erasure.db import metadata
from erasure.integrations import models as integrations
from erasure.notices import models as notices
from erasure.observability import models as observability
from erasure.outbox import models as outbox
from erasure.pipeline import models as pipeline

#: The modules holding tables, by owning domain.
MODEL_MODULES = (
    core,
    accounts,
    outbox,
    audit,
    pipeline,
    integrations,
    observability,
    api,
    notices,
    access,
)

__all__ = ["MODEL_MODULES", "metadata"]
