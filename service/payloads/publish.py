"""Write the published forms of the CDS Hooks payload schemas: ``make schemas`` (``python -m`` this module).

The marshmallow classes in ``service.payloads.cds_hooks`` are the one source. apispec's MarshmallowPlugin
turns each into a schema object twice: as OpenAPI 3.0.3 (its ``components.schemas`` block in
``openapi.yaml``, which is otherwise written by hand and left as it is) and as OpenAPI 3.1, whose schema
objects are JSON Schema 2020-12 (the files under ``schemas/cds-hooks/``). Nested schemas are written
inline, and each class's ``Meta.json_schema_extra`` (the keywords of its cross-field rule) is added to its
object. ``--check`` exits 1, naming the files, when the committed files differ from what would be written;
tests/payloads/test_publish.py runs it.

A development tool: apispec is a dev dependency, and nothing the service runs imports this module.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import Schema

from service.payloads.app import AppAssessSchema
from service.payloads.cds_hooks import (
    FEEDBACK_FILE,
    HOOK_REQUEST_FILE,
    FeedbackRequestSchema,
    HookRequestSchema,
)

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "openapi.yaml"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
YAML_WIDTH = 110  # openapi.yaml's line width


@dataclass(frozen=True)
class Published:
    component: str  # its name under openapi.yaml components.schemas
    schema: type[Schema]
    file: str  # under schemas/
    title: str


PUBLISHED = (
    Published(
        "HookRequest",
        HookRequestSchema,
        HOOK_REQUEST_FILE,
        "CDS Hooks 2.0.1 hook request, as neckcheck reads it",
    ),
    Published(
        "FeedbackRequest",
        FeedbackRequestSchema,
        FEEDBACK_FILE,
        "CDS Hooks 2.0.1 feedback request",
    ),
    Published(
        "AppAssessRequest",
        AppAssessSchema,
        "app/assess-request.schema.json",
        "The clinician app's request to POST /app/api/assess",
    ),
)


class _Converter(OpenAPIConverter):
    """apispec's converter, plus each schema class's ``Meta.json_schema_extra``."""

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        converted: dict[str, Any] = super().schema2jsonschema(schema)  # type: ignore[no-untyped-call]
        meta = getattr(schema, "Meta", None)
        converted.update(getattr(meta, "json_schema_extra", {}))
        return _description_first(converted)


class _Plugin(MarshmallowPlugin):
    Converter = _Converter


def _description_first(schema: dict[str, Any]) -> dict[str, Any]:
    """Put ``description`` and ``type`` before the rest, so a reader meets them first."""
    first = {key: schema[key] for key in ("description", "type") if key in schema}
    return first | {key: value for key, value in schema.items() if key not in first}


def _inline(schema: type[Schema]) -> str:
    """No component name for a nested schema: apispec then writes it inline, so each file stands alone."""
    return ""


def schema_objects(openapi_version: str) -> dict[str, dict[str, Any]]:
    """Each published payload as an OpenAPI ``openapi_version`` schema object, nested schemas inline."""
    spec = APISpec(
        title="neckcheck",
        version="1",
        openapi_version=openapi_version,
        plugins=[_Plugin(schema_name_resolver=_inline)],
    )
    for item in PUBLISHED:
        spec.components.schema(item.component, schema=item.schema)
    schemas: dict[str, dict[str, Any]] = spec.to_dict()["components"]["schemas"]
    return schemas


def render() -> dict[Path, str]:
    """Every file this tool owns, as it should read."""
    files: dict[Path, str] = {}
    for name, schema in schema_objects("3.1.0").items():
        item = next(p for p in PUBLISHED if p.component == name)
        document = {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": f"https://neckcheck.org/schemas/{item.file}",
            "title": item.title,
            **schema,
        }
        path = ROOT / "schemas" / item.file
        files[path] = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    text = OPENAPI.read_text(encoding="utf-8")
    for name, schema in schema_objects("3.0.3").items():
        text = with_component(text, name, schema)
    files[OPENAPI] = text
    return files


def with_component(text: str, name: str, schema: dict[str, Any]) -> str:
    """openapi.yaml with the block of ``components.schemas.<name>`` replaced; every other line as it was.

    The rest of the document is written by hand, so only the generated blocks are rewritten, in the
    document's style (two-space indents, literal blocks for text with line breaks, lines up to 110).
    """
    lines = text.splitlines(keepends=True)
    schemas = lines.index("  schemas:\n")
    start = lines.index(f"    {name}:\n", schemas)
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].strip() and _indent(lines[i]) <= 4), len(lines)
    )
    dumped = yaml.dump(
        {name: schema}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=YAML_WIDTH - 4
    )
    block = ["    " + line if line.strip() else line for line in dumped.splitlines(keepends=True)]
    return "".join(lines[:start] + block + lines[end:])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


class _Dumper(yaml.SafeDumper):
    """openapi.yaml's style: a string with line breaks as a literal block."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def main(argv: list[str]) -> int:
    stale = [path for path, text in render().items() if path.read_text(encoding="utf-8") != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.relative_to(ROOT)} differs from the marshmallow schemas; run make schemas")
        return 1 if stale else 0
    for path, text in render().items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
