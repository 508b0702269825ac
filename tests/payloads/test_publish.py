"""The published JSON Schemas and openapi.yaml components are what ``make schemas`` writes: no drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from service.payloads.publish import OPENAPI, PUBLISHED, ROOT, render, schema_objects, with_component


@pytest.mark.parametrize("path", sorted(render()), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_committed_file_is_what_the_generator_writes(path: Path) -> None:
    files = render()
    assert path.read_text(encoding="utf-8") == files[path], (
        f"{path} has drifted from service/payloads; run `make schemas` and commit the result"
    )


def test_the_generator_owns_the_schema_files_and_openapi_yaml() -> None:
    names = {path.name for path in render()}
    assert names == {
        "hook-request.schema.json",
        "feedback.schema.json",
        "assess-request.schema.json",
        "openapi.yaml",
    }


def test_openapi_yaml_uses_the_generated_components() -> None:
    document = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    generated = schema_objects("3.0.3")
    for item in PUBLISHED:
        assert document["components"]["schemas"][item.component] == generated[item.component]


def test_the_check_command_passes_on_the_committed_files() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.payloads.publish", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")


def test_only_the_generated_blocks_of_openapi_yaml_are_rewritten() -> None:
    """The rest of openapi.yaml is written by hand: its wording and layout stay as they are."""
    before = (
        "openapi: 3.0.3\ncomponents:\n  schemas:\n"
        "    Other:\n      description: >-\n        folded by\n        hand\n"
        "    HookRequest:\n      type: string\n      description: stale\n"
        "    After:\n      required: [a, b]\n"
        "  examples: {}\n"
    )
    after = with_component(before, "HookRequest", {"type": "object", "required": ["hook"]})
    assert after == before.replace(
        "    HookRequest:\n      type: string\n      description: stale\n",
        "    HookRequest:\n      type: object\n      required:\n      - hook\n",
    )
