"""Which request shape an org's DELETE calls accept, found without deleting anything.

Salesforce does not document whether the Conversation Data API deletes take their ids in a JSON
body or in the query string. The probe asks the org itself: one `DELETE conversation-participants`
per shape with a MessagingEndUser id that no org can hold, judged against what the client relies
on (docs/salesforce.md, "The contract"):

- 202: the shape is understood; Salesforce logged a request for an id that does not exist (its
  ConversationApiLog will end FAILED). Nothing is deleted.
- 404: the shape is understood and the id reported unknown. Only meaningful because the check has
  just seen the engagement API answer (a switched-off API answers 404 to everything).
- 400: this shape is not understood: try the other one.
- 429: this execution user's delete quota is used up: nothing can be learnt now.

The configured shape is tried first, so an org set up right costs one call. Salesforce may count
each probe against the execution user's delete quota (10 calls per hour): the check says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from erasure.salesforce.client.probe import OrgProbe, ProbeResponse
from erasure.salesforce.config import DeleteIdsIn, OrgSettings

#: A MessagingEndUser id (prefix 0PA, valid checksum) that no org holds: instance "00" and record
#: number 0 are never issued.
IMPOSSIBLE_ID = "0PA000000000000GAA"
PATH = "/platform/engagement/v1.0/conversation-participants"


@dataclass
class ShapeFinding:
    """What the probe learnt: the accepted shape (None: none, or could not tell) and each answer."""

    accepted: DeleteIdsIn | None = None
    answers: list[tuple[DeleteIdsIn, ProbeResponse]] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.answers)

    @property
    def last(self) -> ProbeResponse:
        return self.answers[-1][1]


def _send(
    probe: OrgProbe, org: OrgSettings, api_url: str, token: str, shape: DeleteIdsIn
) -> ProbeResponse:
    name = org.participant_ids_field
    if shape is DeleteIdsIn.QUERY:
        return probe.delete(api_url + PATH, token, params={name: IMPOSSIBLE_ID})
    return probe.delete(api_url + PATH, token, json_body={name: [IMPOSSIBLE_ID]})


def find_delete_shape(
    probe: OrgProbe, org: OrgSettings, *, api_url: str, token: str
) -> ShapeFinding:
    """Probe the configured shape, then the other one if the org did not understand it."""
    finding = ShapeFinding()
    others = [shape for shape in DeleteIdsIn if shape is not org.delete_ids_in]
    for shape in (org.delete_ids_in, *others):
        resp = _send(probe, org, api_url, token, shape)
        finding.answers.append((shape, resp))
        if resp.status in (202, 404):
            finding.accepted = shape
            return finding
        if resp.status != 400:
            return finding  # 429, 401, 5xx, no answer: nothing more to learn from the other
    return finding
