"""Operating erasure: structured logs with correlation ids, Prometheus metrics, health checks."""
