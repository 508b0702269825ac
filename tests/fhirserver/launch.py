"""Start SEKMET's FHIR R4 server (PyPI ``sekmet-fhir``) for the tests: ``python launch.py PORT DATA_DIR
[SETTINGS_JSON]``.

Run by the interpreter of the server's own virtualenv (tests/fhir_server.py builds it), never imported by
the tests. SEKMET indexes only the search parameters of the resource types its hospital workflows use; the
clinician app also searches QuestionnaireResponse, and saves RiskAssessment and GuidanceResponse with a
conditional create on ``identifier``. So, before the server starts, this adds those types' standard R4
search parameters (FHIR R4 §6.4.3, each resource's "Search Parameters" table) to SEKMET's own table, in
SEKMET's own notation (``name:kind:element paths[:target type]``). Storage, indexing, search,
transactions and conditional create all stay SEKMET's code.

SETTINGS_JSON, when given, is a file of SEKMET settings laid over these (``server_auth`` with SMART
Backend Services clients, a ``base_url`` that names a proxy in front of the server...).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import uvicorn
from sekmet.config import Settings, set_settings
from sekmet.fhir import search_params
from sekmet.main import create_app

# R4 SearchParameter definitions (expression -> element path; "patient" is subject restricted to Patient)
R4_PARAMS = {
    "QuestionnaireResponse": """
        identifier:token:identifier
        status:token:status
        subject:reference:subject
        patient:reference:subject:Patient
        authored:date:authored
        author:reference:author
        encounter:reference:encounter
        based-on:reference:basedOn
        part-of:reference:partOf
        source:reference:source
    """,
    "RiskAssessment": """
        identifier:token:identifier
        status:token:status
        subject:reference:subject
        patient:reference:subject:Patient
        date:date:occurrenceDateTime
        method:token:method
        encounter:reference:encounter
        condition:reference:condition
        performer:reference:performer
        risk:token:prediction.qualitativeRisk
        probability:number:prediction.probabilityDecimal
    """,
    "GuidanceResponse": """
        identifier:token:identifier
        request:token:requestIdentifier
        subject:reference:subject
        patient:reference:subject:Patient
    """,
}


def add_r4_search_parameters() -> None:
    for resource_type, block in R4_PARAMS.items():
        table = search_params.PARAMS.setdefault(resource_type, {})
        for line in block.split():
            name, kind, paths, *target = line.split(":")
            table[name] = search_params.SearchParam(name, kind, tuple(paths.split("|")), *target)


def main(port: int, data: Path, extra: dict[str, object]) -> None:
    settings = Settings.model_validate(
        {
            "base_url": f"http://127.0.0.1:{port}/fhir",
            "host": "127.0.0.1",
            "port": port,
            "data_dir": str(data),
            "own_private_key_path": str(data / "keys" / "sekmet.pem"),
            "simulator": {"enabled": False},  # a store only: nothing answers a saved ServiceRequest by itself
            "log_inbound": False,
            **extra,
        }
    )
    set_settings(settings)
    add_r4_search_parameters()
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(
        int(sys.argv[1]), Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text()) if sys.argv[3:] else {}
    )
