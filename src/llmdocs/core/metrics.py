"""Prometheus metrics per service app: each app has its own registry, so one process
can host all eight services and each `/metrics` tells only about its own."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class HttpMetrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("method", "route", "status")
        self.requests = Counter(
            "llmdocs_http_requests", "HTTP requests handled.", labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "llmdocs_http_request_duration_seconds", "HTTP request latency.", labels,
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.in_flight = Gauge(
            "llmdocs_http_requests_in_flight", "HTTP requests being handled.",
            registry=self.registry,
        )
        self.info = Gauge("llmdocs_service_info", "Service identity.", ("service",),
                          registry=self.registry)
        self.info.labels(service=service).set(1)
        # the labelled children by (method, route, status): `labels()` validates and
        # locks on every call; routes are templates, so this stays as small as the metric
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            labels = (method, route, str(status))
            children = self.requests.labels(*labels), self.latency.labels(*labels)
            self._children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)
