"""The service's metrics (Prometheus, through prometheus-client): an infrastructure leaf, so
that the domain may count what it does without knowing who reads it. GET /metrics
(server.ops) writes them out; docs/observe.md says what each means and when to be woken.

Each app has a registry of its own (the suite makes hundreds of apps in one process: one
test's counts must not show in another's), and nothing here is counted by a prometheus call on
a hot path. What happens often is counted with a plain `+= 1` on an object the app already
holds (the edge's latency table below, the broker's frame counts); what can be asked is asked
at scrape time (the database's queues, Redis's ping), by the sources server.ops adds. A source
that fails is skipped and counted (`kaifang_scrape_errors_total`): a scrape always answers.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

__all__ = ["CONTENT_TYPE_LATEST", "AppMetrics", "RequestLatency", "counter", "gauge"]

# Seconds. A registration's answer takes a few ms; a page tens; past 1 s a citizen notices.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A request no route matched (a scanner's guesses must not make a label each).
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
# The kinds of websocket a process holds open (server.edge names them from the path).
SOCKET_KINDS = ("viewer", "host", "ingest", "other")

Source = Callable[[], Iterable[Metric]]


def gauge(name: str, documentation: str, value: float,
          labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family


def counter(name: str, documentation: str, value: float,
            labels: dict[str, str] | None = None) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family


class RequestLatency:
    """Request durations by (route template, method, status class), as a histogram. Counted by
    the edge on the event loop, one list of ints per label set: no lock and no prometheus call
    per request (a registration burst is bounded by the loop). Read at scrape from another
    thread: list copies are atomic under the GIL, so a scrape sees each series whole or a
    request before."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        # Per (route, method, status): the count in each bucket (the last is +Inf, not
        # cumulative), then the sum of seconds. Keyed by the status itself (one tuple, no
        # arithmetic per request); classes are summed at scrape.
        self._series: dict[tuple[str, str, int], list[Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self._series.get((route, method, status))
        if series is None:
            series = self._new(route, method, status)
        series[bisect.bisect_left(self.buckets, seconds)] += 1
        series[-1] += seconds

    def _new(self, route: str, method: str, status: int) -> list[Any]:
        # A method of no one's (any token is one in HTTP) shares one series and adds no key.
        key = (route, method if method in METHODS else "other", status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = [0] * (len(self.buckets) + 1) + [0.0]
        return series

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "kaifang_http_request_duration_seconds",
            "Time from a request's arrival to its answer's end, by route template, method "
            "and status class", labels=["route", "method", "status"])
        by_class: dict[tuple[str, str, str], list[Any]] = {}
        for (route, method, status), series in list(self._series.items()):
            counts = list(series)
            key = (route, method, STATUS_CLASSES[min(max(status // 100, 1), 5) - 1])
            total = by_class.get(key)
            by_class[key] = counts if total is None else [a + b for a, b in zip(total, counts,
                                                                                 strict=True)]
        for key, counts in by_class.items():
            cumulative, buckets = 0, []
            for bound, count in zip(self.buckets, counts, strict=False):
                cumulative += count
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", cumulative + counts[len(self.buckets)]))
            family.add_metric(list(key), buckets, sum_value=counts[-1])
        yield family


class AppMetrics:
    """One app's metrics: its registry, the counts the web layer keeps (request latency,
    websockets open, `busy` answers), and the sources asked at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = RequestLatency()
        self.sockets: dict[str, int] = dict.fromkeys(SOCKET_KINDS, 0)
        self.busy_answers = 0
        self._sources: list[tuple[str, Source]] = []
        self._source_errors: dict[str, int] = {}
        self.registry.register(_Collector(self))

    def add_source(self, name: str, source: Source) -> None:
        """`source()` is called at each scrape, in the scrape's thread; it should answer in
        well under a second and must never wait on a lock."""
        self._sources.append((name, source))

    def text(self) -> bytes:
        """The Prometheus text format (CONTENT_TYPE_LATEST)."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        yield from self.requests.collect()
        open_sockets = GaugeMetricFamily(
            "kaifang_websockets_open", "Websockets open on this process, by kind (viewer: a "
            "live room's viewer; host: the console's room socket; ingest: a browser "
            "publishing)", labels=["kind"])
        for kind, count in list(self.sockets.items()):
            open_sockets.add_metric([kind], count)
        yield open_sockets
        yield counter("kaifang_busy_answers", "Requests answered 503 busy (a lock not had "
                      "within KAIFANG_LOCK_TIMEOUT_S)", self.busy_answers)
        for name, source in self._sources:
            try:
                found = list(source())
            except Exception:
                self._source_errors[name] = self._source_errors.get(name, 0) + 1
                continue
            yield from found
        errors = CounterMetricFamily("kaifang_scrape_errors", "Sources of /metrics that failed "
                                     "(their metrics were left out of that scrape)",
                                     labels=["source"])
        for name, _source in self._sources:
            errors.add_metric([name], self._source_errors.get(name, 0))
        yield errors


class _Collector:
    def __init__(self, metrics: AppMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self.metrics.collect()
