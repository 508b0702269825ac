"""The documentation as a reader meets it: the README and every page the site builds (``docs/**/*.md``,
links to ``deploy/README.md`` and ``benchmarks/README.md`` included), and the fenced code blocks in them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.live import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)\n```$", re.M | re.S)


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is (page and line) and what it says."""

    page: Path
    line: int
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(page, text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)
    ]


def curl_examples(page: Path) -> list[Block]:
    """The blocks that call the service: shell blocks that run ``curl``."""
    return [b for b in blocks(page) if b.lang == "sh" and re.search(r"(^|\| *)curl ", b.text, re.M)]
