"""``make cql``: the CQL library from the rule table and codes, and its ELM from the reference translator.

The translator is cqframework's JavaScript build (``cql/translate.mjs``, run by Node.js; no Java), installed
from ``cql/package-lock.json`` by ``service.cql.npm``. It must report no error, and no warning other than the
ones read and accepted here (``ACCEPTED``). Both files are written under ``schemas/cql/`` and committed, like
the published JSON Schemas; ``--check`` exits 1, naming the files, when the committed ones differ from what
would be written (tests/cql/test_build.py runs the same comparison).

A development tool: the service reads the written files, never this module.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.codebook import load_codebook
from service.cql.generate import cql_text
from service.cql.library import cql_file, elm_file
from service.cql.npm import FOLDER, ROOT, install
from service.rules.table import RuleTable, load_table

SCHEMAS = ROOT / "schemas" / "cql"
TRANSLATE = FOLDER / "translate.mjs"
# Read and accepted: the outputs report rule ids and fact names as strings ('urgent-signs' in "Rules Fired"),
# and the definitions are named by the same ids ("urgent-signs"), as rules.md names them. Nothing else is.
_SAME_NAME = re.compile(r"String literal '(?P<name>[^']+)' matches the identifier (?P=name)\. .*")


@dataclass(frozen=True)
class Message:
    severity: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.severity}: {self.text}"


class TranslationFailed(RuntimeError):
    """The translator reported an error, or a warning nobody has read."""


def node() -> str:
    found = shutil.which("node") or shutil.which("nodejs")
    if found is None:
        raise TranslationFailed("Node.js is needed to translate CQL: apt install nodejs")
    return found


def messages(elm: dict[str, Any]) -> list[Message]:
    """The translator's messages, as it records them in the ELM's annotations."""
    return [
        Message(str(a.get("errorSeverity")), int(a.get("startLine") or 0), str(a.get("message")))
        for a in elm["library"].get("annotation", [])
        if a.get("type") == "CqlToElmError"
    ]


def unaccepted(found: list[Message], table: RuleTable) -> list[Message]:
    names = {*table.facts, *(rule.id for rule in table.rules)}

    def accepted(message: Message) -> bool:
        match = _SAME_NAME.fullmatch(message.text)
        return message.severity == "warning" and match is not None and match["name"] in names

    return [m for m in found if not accepted(m)]


def translate(cql: str, table: RuleTable) -> str:
    """The ELM JSON of ``cql``, exactly as the translator writes it; raises on any unaccepted message."""
    install()
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "library.cql"
        source.write_text(cql, encoding="utf-8")
        done = subprocess.run(
            [node(), str(TRANSLATE), str(source)], capture_output=True, text=True, timeout=300, check=False
        )
    try:
        elm = json.loads(done.stdout)
    except ValueError as exc:
        raise TranslationFailed(f"the translator wrote no ELM ({done.stderr.strip()[-2000:]})") from exc
    problems = unaccepted(messages(elm), table)
    if problems or done.returncode != 0:
        shown = "\n".join(str(m) for m in problems) or done.stderr.strip()[-2000:]
        raise TranslationFailed(f"the CQL does not translate cleanly:\n{shown}")
    return done.stdout


def render(table: RuleTable | None = None) -> dict[Path, str]:
    """Each file ``make cql`` writes, with its content."""
    table = table or load_table()
    cql = cql_text(table, load_codebook())
    return {cql_file(table.version, SCHEMAS): cql, elm_file(table.version, SCHEMAS): translate(cql, table)}


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"{path.relative_to(ROOT)} differs from what `make cql` writes", file=sys.stderr)
        return 1 if stale else 0
    SCHEMAS.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
