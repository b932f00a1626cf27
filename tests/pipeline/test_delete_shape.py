"""An org whose engagement API takes the delete ids in the query string is erased end to end,
once its `delete_ids_in` setting says so (the body shape is undocumented: a per-org setting)."""

from __future__ import annotations

from collections.abc import Callable

from erasure.core.models import TargetStatus
from erasure.salesforce import DeleteIdsIn
from tests.support.pipeline import World


def test_an_org_taking_ids_in_the_query_string_is_erased(
    make_world: Callable[..., World],
) -> None:
    world = make_world(delete_ids_in=DeleteIdsIn.QUERY)
    world.sandbox.org.configure(delete_ids_in="query")
    request_id = world.submit("+14155550002")
    world.wait_for([request_id])
    (target,) = world.targets(request_id)
    assert target.status is TargetStatus.DELETED
    assert world.sandbox.org.accepted_ids["delete_participants"] == [target.salesforce_id]
