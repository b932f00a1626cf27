"""Notices to the data subject: the acknowledgement of a request, the notice of a deadline
extension with its reasons (GDPR Art. 12(3) asks for it within the first month) and the
completion letter. Rendered from templates an admin can edit (a sandboxed Jinja2), kept sealed
like notes, downloadable, and mailed over SMTP by a worker when a server is configured.
Framework-free: no Flask, no Celery."""
