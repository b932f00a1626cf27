"""The integrations' tasks (deliveries queue): turn request events into callback and comment
deliveries, and send the due ones."""

from __future__ import annotations

from celery import shared_task

from erasure import task_names
from erasure.celery_app import ErasureTask
from erasure.deliveries import runner as delivery_runner


@shared_task(name=task_names.DISPATCH_CALLBACKS, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def dispatch_callbacks(self: ErasureTask) -> int:
    """Turn new request events of the audit log into callback and comment deliveries."""
    from erasure.access.events import AccessEvents
    from erasure.integrations import callbacks

    links = callbacks.Links(self.resources().settings.public_url)
    with self.new_session() as session, session.begin():
        return callbacks.dispatch(session, links=links, others=[AccessEvents()])


@shared_task(name=task_names.SEND_CALLBACKS, base=ErasureTask, bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def send_callbacks(self: ErasureTask) -> int:
    """Attempt due deliveries, several destinations at once (each delivery in its own short
    transactions, no lock held during its HTTP call); returns how many were handled."""
    settings = self.resources().settings
    return delivery_runner.run(
        self.resources().sessionmaker,
        delivery_runner.senders_from(settings),
        delivery_runner.Limits.from_settings(settings),
        delivery_runner.RunOptions(threads=settings.delivery_threads),
    )
