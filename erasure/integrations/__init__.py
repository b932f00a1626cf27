"""Integrations: ticketing webhooks in, signed status callbacks and ticket comments out, OpenDSR.

Framework-free domain code (no Flask, no Celery): the HTTP and Celery edges call into it.
"""
