"""The transactional outbox: its table (models) and how work is enqueued and published (messages)."""
