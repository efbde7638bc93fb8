"""The service's metrics (Prometheus, through prometheus-client): an infrastructure leaf, so
that the domain may count what it does without knowing who reads it. GET /metrics
(server.ops) writes them out. Issue 19 fills this in."""

from __future__ import annotations
