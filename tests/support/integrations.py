"""Integrations: webhook sources a test makes, and the loopback networks test receivers listen
on."""

from __future__ import annotations

from collections.abc import Callable

from erasure.integrations.models import WebhookSource

MakeSource = Callable[..., tuple[WebhookSource, str]]


#: The local receivers and fake ticket systems of these tests listen on loopback, which the SSRF
#: guard refuses unless allowed (as an on-premise deployment would allow its own network).
LOOPBACK = ("127.0.0.0/8", "::1/128")
