"""The trivial CDS Hooks peer of `make bench`: what any Flask patient-view service costs at the least.

It parses the hook request's JSON (as a service must before it can answer) and returns one fixed card: no
validation, no rules, no database. neckcheck's patient-view throughput is reported as a share of this
app's, served by gunicorn with the same settings in the same run (benchmarks/peer_gunicorn.conf.py).
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

app = Flask("neckcheck-bench-peer")

CARD = {
    "uuid": "6c7b0a6e-0000-4000-8000-000000000001",
    "summary": "Facial numbness with neck pain: consider escalation",
    "indicator": "warning",
    "source": {"label": "trivial peer"},
}


@app.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@app.post("/cds-services/<service_id>")
def hook(service_id: str) -> tuple[Response, int] | Response:
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("context"), dict):
        return jsonify(error="not a hook request"), 400
    return jsonify(cards=[CARD])
