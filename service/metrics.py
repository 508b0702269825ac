"""Prometheus metrics, one registry per app (no module-level metric objects).

Under gunicorn with several workers each worker counts on its own; with PROMETHEUS_MULTIPROC_DIR set
(service/gunicorn.conf.py sets it) the values go to files there and /metrics adds up every worker.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from service.rules.decide import Decision

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "neckcheck_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "neckcheck_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.assessments = Counter(
            "neckcheck_assessments", "Assessments by risk and status", ["risk", "status"], registry=r
        )
        self.fired = Counter(
            "neckcheck_rule_fired", "Assessments in which a rule fired", ["rule"], registry=r
        )
        # (method, route, status) -> the counter and histogram children: prometheus_client's labels()
        # takes a lock and builds a key per call; a route table has few label sets, looked up per request
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.fallback = Counter(
            "neckcheck_cds_fallback_fetches",
            "CDS Hooks FHIR-server fallback fetches",
            ["key", "outcome"],
            registry=r,
        )
        # Readiness and the spool of audit, card and feedback records, named "audit" since it held only
        # those (set by /readyz and /metrics; see _pod_gauge)
        self.degraded = _pod_gauge(
            "neckcheck_degraded", "1 while answering without the database (records spooled), else 0", r
        )
        self.ready = _pod_gauge(
            "neckcheck_ready", "1 while /readyz answers 200 (ready or degraded), else 0", r
        )
        self.spool_bytes = _pod_gauge(
            "neckcheck_audit_spool_bytes",
            "Bytes of audit, card and feedback records waiting in the spool for the database",
            r,
        )
        self.spool_max_bytes = _pod_gauge(
            "neckcheck_audit_spool_max_bytes",
            "NECKCHECK_SPOOL_MAX_BYTES: /readyz is 503 from this size on",
            r,
        )
        self.audit_spooled = Counter(
            "neckcheck_audit_spooled",
            "Audit, card and feedback records written to the spool (database unavailable)",
            registry=r,
        )
        self.audit_quarantined = Counter(
            "neckcheck_audit_quarantined",
            "Audit, card and feedback records the database refused for good, moved to quarantine",
            registry=r,
        )
        self.audit_unjournaled = Counter(
            "neckcheck_audit_unjournaled",
            "Audit, card and feedback records answered without their journal line (journal not writable): "
            "lost if the process is killed before they are stored",
            registry=r,
        )
        self.audit_lost = Counter(
            "neckcheck_audit_lost",
            "Audit, card and feedback records neither stored nor spooled (spool not writable)",
            registry=r,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_decision(self, decision: Decision) -> None:
        self.assessments.labels(decision.risk, "final" if decision.final else "preliminary").inc()
        for result in decision.fired:
            self.fired.labels(result.rule.id).inc()

    def observe_fallback(self, fetched: tuple[str, ...], failed: tuple[str, ...]) -> None:
        for key in fetched:
            self.fallback.labels(key, "ok").inc()
        for key in failed:
            self.fallback.labels(key, "failed").inc()

    def exposition(self) -> bytes:
        # multiprocess only if this process's values really go to files (chosen when prometheus_client
        # was imported), not merely because the variable is set now
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and values.ValueClass is not values.MutexValue:
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return generate_latest(combined)
        return generate_latest(self.registry)


def _pod_gauge(name: str, documentation: str, registry: CollectorRegistry) -> Gauge:
    """A value of the whole pod: every worker sees the same database and spool directory, so the most
    recent value any live worker set is the pod's (prometheus_client multiprocess "livemostrecent")."""
    return Gauge(name, documentation, registry=registry, multiprocess_mode="livemostrecent")
