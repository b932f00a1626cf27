"""Tests of the verifiable audit log (pure parts: no database)."""
