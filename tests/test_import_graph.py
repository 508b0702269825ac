"""The rooms of service/ import downward only (docs/architecture.md).

Front ends (the HTTP blueprints, CDS Hooks, SDC, the clinician app, screening, the CLI) use the engine
through its public face: ``service.assess`` (Assessor, Assessment), the rule table, the publishers, the
error tree, the code book and the FHIR reader. Everything else in ``intake``, ``output`` and ``rules`` is
the engine's own. No blueprint imports another, the payload schemas import none of their users, and the
engine imports no front end. Every import counts, also one inside a function.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

SERVICE = Path(__file__).parents[1] / "service"

ENGINE = ("service.intake", "service.output", "service.rules")
# the rule table, the publishers, and the error tree's FHIR form (one error path: OperationOutcome)
PUBLIC = (
    "service.rules.table",
    "service.rules.versions",
    "service.rules.compare",
    "service.output.artefacts",
    "service.output.measure",
    "service.output.questionnaire",
    "service.output.operation_outcome",
)
FRONT_ENDS = (
    "service.app_ui",
    "service.cds",
    "service.sdc",
    "service.screen",
    "service.http",
    "service.cli",
    "service.spark_job",
)

# room -> rooms it must not import (besides the engine's internals, which every front end is refused)
REFUSED = {
    "service.app_ui": ("service.http", "service.cds", "service.sdc", "service.screen", "service.cli"),
    "service.cds": ("service.http", "service.app_ui", "service.sdc", "service.screen", "service.cli"),
    "service.sdc": ("service.http", "service.app_ui", "service.cds", "service.screen", "service.cli"),
    "service.screen": ("service.http", "service.app_ui", "service.cds", "service.sdc", "service.cli"),
    "service.http": ("service.app_ui", "service.screen", "service.cli"),
    "service.payloads": (*FRONT_ENDS, "service.security", "service.web", "service.reader"),
    "service.reader": (*FRONT_ENDS, "service.web", "service.storage"),
    "service.cql": (*FRONT_ENDS, "service.web", "service.reader", "service.storage", "service.payloads"),
    "service.npm": (*FRONT_ENDS, "service.cql", "service.web", "service.reader", "service.storage"),
    "service.web": FRONT_ENDS,
    "service.security": (*FRONT_ENDS, "service.web", "service.reader", "service.storage"),
    "service.storage": (*FRONT_ENDS, "service.web", "service.reader", "service.shadow"),
    "service.shadow": (*FRONT_ENDS, "service.web", "service.reader"),
    "service.intake": (*FRONT_ENDS, "service.web", "service.reader", "service.storage", "service.payloads"),
    "service.rules": (*FRONT_ENDS, "service.web", "service.reader", "service.storage", "service.payloads"),
    "service.output": (*FRONT_ENDS, "service.web", "service.reader", "service.storage", "service.payloads"),
    "service.assess": (*FRONT_ENDS, "service.web", "service.reader", "service.storage", "service.payloads"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SERVICE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[str]:
    """Every ``service.*`` module the file imports, resolved to the module (``from a import b`` counts as
    ``a.b`` when ``a.b`` is a module, else ``a``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                is_module = (SERVICE.parent / Path(*sub.split("."))).with_suffix(".py").exists() or (
                    SERVICE.parent / Path(*sub.split(".")) / "__init__.py"
                ).exists()
                found.append(sub if is_module else node.module)
    return [name for name in found if name == "service" or name.startswith("service.")]


def within(name: str, room: str) -> bool:
    return name == room or name.startswith(room + ".")


def violations(read: Callable[[Path], list[str]] = imports) -> list[str]:
    found = []
    for path in sorted(SERVICE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        me = module_name(path)
        for target in read(path):
            internal = any(within(target, e) for e in ENGINE) and not any(within(target, p) for p in PUBLIC)
            if internal and any(within(me, f) for f in FRONT_ENDS):
                found.append(f"{me} imports {target}, one of the engine's own modules")
            for room, refused in REFUSED.items():
                if within(me, room) and any(within(target, r) and not within(target, room) for r in refused):
                    found.append(f"{me} imports {target}, a room above {room}")
    return found


def test_every_room_imports_downward_only() -> None:
    assert violations() == []


def test_front_ends_read_the_assessments_face_not_its_engine_record() -> None:
    """``Assessment.intake`` and ``Assessment.decision`` are the engine's own types: a front end reads the
    typed face (rules_fired, orders, to_ask, findings, not_used, ...) instead."""
    found = []
    for path in sorted(SERVICE.rglob("*.py")):
        me = module_name(path)
        if not any(within(me, f) for f in FRONT_ENDS):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("intake", "decision"):
                found.append(f"{me}:{node.lineno} reads .{node.attr}")
    assert found == []


@pytest.mark.parametrize(
    ("module", "target"),
    [  # the imports issue 21 found; each must be refused
        ("service.app_ui.app", "service.http.auth"),
        ("service.app_ui.screen", "service.output.references"),
        ("service.app_ui.answers", "service.intake.fields"),
        ("service.app_ui.screen", "service.intake.observation"),
        ("service.app_ui.loop", "service.cds.prefetch"),
        ("service.sdc.populate", "service.output.identifiers"),
        ("service.screen.patient", "service.cds.draft_orders"),
        ("service.screen.records", "service.intake.bundle"),
        ("service.screen.patient", "service.rules.decide"),
        ("service.screen.spark", "service.cli"),
        ("service.payloads.cds_hooks", "service.cds.discovery"),
    ],
)
def test_the_check_refuses_the_imports_it_is_for(module: str, target: str) -> None:
    """Each import the issue listed, added back to its module, is reported."""
    path = SERVICE.parent / Path(*module.split(".")).with_suffix(".py")

    def with_the_import(p: Path) -> list[str]:
        return [*imports(p), target] if p == path else imports(p)

    assert any(v.startswith(f"{module} imports {target}") for v in violations(with_the_import))
