"""The reference answer to 'is this line canonical JSON': rfc8785's own serialisation."""

from __future__ import annotations

import json

import rfc8785


def reference(line: bytes) -> bool:
    try:
        return bool(rfc8785.dumps(json.loads(line.decode("utf-8"))) == line)
    except (ValueError, TypeError, RecursionError):
        return False
