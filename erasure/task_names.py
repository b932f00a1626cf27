"""Every Celery task's name, defined once: the senders (outbox rows, the relay kick, the beat
schedule, the queue routes) and the workers (erasure.tasks) use these constants."""

from __future__ import annotations

RELAY_OUTBOX = "erasure.relay_outbox"
RESOLVE = "erasure.resolve"
DISPATCH = "erasure.dispatch"
CONFIRM = "erasure.confirm"
SWEEP = "erasure.sweep"
PREDICT = "erasure.predict"
DISPATCH_CALLBACKS = "erasure.dispatch_callbacks"
SEND_CALLBACKS = "erasure.send_callbacks"
SEQUENCE_AUDIT = "erasure.sequence_audit"
CHECKPOINT_AUDIT = "erasure.checkpoint_audit"
SHRED_EXPIRED = "erasure.shred_expired"
RETRIEVE_ACCESS = "erasure.retrieve_access"
DESTROY_EXPORTS = "erasure.destroy_exports"
SEND_NOTICE = "erasure.send_notice"
SWEEP_NOTICES = "erasure.sweep_notices"
