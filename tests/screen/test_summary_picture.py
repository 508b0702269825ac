"""summary.png as a quality team reads it: each bar named as people name it (codes.json's displays, the
rule titles), never by the rule table's keys, and labelled with its count."""

from __future__ import annotations

import json
from typing import Any

import pytest
from matplotlib.axes import Axes

from benchmarks.bulk_export import write_export
from service.assess import Assessor
from service.screen.summary import figure
from tests.screen.support import AS_OF, screen


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    export = write_export(tmp_path_factory.mktemp("export"), 300, seed=3)
    out = tmp_path_factory.mktemp("screen") / "out"
    assert screen(export.folder, out, "--as-of", AS_OF, "--workers", "1") == 0
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def names(ticks: list[Any]) -> list[str]:
    return [tick.get_text().replace("\n", " ") for tick in ticks]


def counts(ax: Axes) -> list[str]:
    return [text.get_text() for text in ax.texts]


def test_summary_json_names_its_keys_for_people(data: dict[str, Any], assessor: Assessor) -> None:
    shown = data["displayNames"]
    assert shown["facts"]["symptoms-worsening"] == "Symptoms getting worse"
    assert shown["facts"]["neck-pain-severity"] == "Neck pain severity 0-10"  # not the LOINC long name
    assert shown["orders"]["mri-brain"] == "MRI of brain (CT of brain where MRI is not possible)"
    assert shown["rules"] == {rule.id: rule.title for rule in assessor.table.rules}
    assert set(shown["facts"]) == set(assessor.table.facts) and set(shown["orders"]) == set(
        assessor.table.orders
    )


def test_every_bar_has_its_display_name_and_its_count(data: dict[str, Any], assessor: Assessor) -> None:
    risk_ax, rule_ax, ask_ax, esc_ax = figure(data).axes
    book = assessor.book

    rules = data["patientsPerRule"]
    assert names(rule_ax.get_yticklabels()) == [rule.title for rule in assessor.table.rules]
    assert counts(rule_ax) == [f"{n:,}" for n in rules.values()]

    missing = data["missingFactsInPreliminary"][:10]
    assert names(ask_ax.get_yticklabels()) == [book.fact_display(m["fact"]) for m in missing]
    assert counts(ask_ax) == [f"{m['patients']:,}" for m in missing]
    assert "Symptoms getting worse" in names(ask_ax.get_yticklabels())

    orders = data["escalationWithoutServiceRequest"]["byOrder"]
    assert names(esc_ax.get_yticklabels()) == [book.order_display(key) for key in orders]
    due, unmatched = (
        [f"{o['due']:,}" for o in orders.values()],
        [f"{o['noServiceRequest']:,}" for o in orders.values()],
    )
    assert counts(esc_ax) == due + unmatched

    totals = [f"{data['byRisk'][risk]:,}" for risk in ("negligible", "low", "moderate", "high")]
    assert counts(risk_ax)[-4:] == totals  # above each stacked bar
    keys = {*data["patientsPerRule"], *data["displayNames"]["facts"], *orders}
    shown = [t.get_text() for ax in (rule_ax, ask_ax, esc_ax) for t in [*ax.get_yticklabels(), *ax.texts]]
    assert not keys & set(shown)  # no internal key anywhere on the picture
