"""erasure: carries out GDPR/CCPA erasure requests against Salesforce Enhanced Messaging.

Importing the package has no side effects: no app, no engine, no Celery app.
"""

__version__ = "0.1.0"
