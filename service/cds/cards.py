"""Decision → CDS Hooks cards (CDS Hooks 2.0.1 §CDS Service Response). An adapter only: no rule lives here.

One card per evaluation, so a clinician sees one answer, not one per rule. Its indicator follows the risk
(high → critical, moderate → warning, low with a fired rule → info); a preliminary result is at least a
warning that names what to ask and links the screening Questionnaire; a final result where nothing fired
gives no card (alert fatigue).
Suggestions create the very ServiceRequests ``$assess`` returns, one suggestion per order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from service.assess import Assessment, Order
from service.codebook import CodeBook
from service.ids import stable_uuid
from service.packaged import SCHEMAS_DIR
from service.rules.table import RuleTable

INDICATOR = {"high": "critical", "moderate": "warning", "low": "info", "negligible": "info"}
RANK = ("info", "warning", "critical")
OVERRIDE_REASONS = SCHEMAS_DIR / "cds-hooks" / "override-reasons.json"
SUMMARY_MAX = 140  # CDS Hooks 2.0.1 §Card Attributes: summary "<140-character"


@dataclass(frozen=True)
class CardContext:
    """What the card needs besides the assessment: where the rule documentation is published."""

    plan_definition_url: str
    drafted: frozenset[str] = frozenset()  # order keys already among the draft orders (order-sign)
    spine_instead_of_brain: bool = False

    @property
    def fhir_base(self) -> str:
        """This service's FHIR base (``<public URL>/fhir``), where the PlanDefinition is published: what the
        card's other links are found beside."""
        return self.plan_definition_url.rsplit("/PlanDefinition/", 1)[0]

    @property
    def app_launch_url(self) -> str:
        """The clinician app's SMART launch URL, on the same public base as the FHIR surface."""
        return self.fhir_base.removesuffix("/fhir") + "/app/launch"


@cache  # immutable data, read once per process rather than on every card
def override_reasons(path: Path = OVERRIDE_REASONS) -> list[dict[str, str]]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [{"system": raw["system"], "code": c["code"], "display": c["display"]} for c in raw["codes"]]


def card_for(
    assessment: Assessment, table: RuleTable, book: CodeBook, ctx: CardContext
) -> dict[str, Any] | None:
    if assessment.final and not assessment.rules_fired and not ctx.spine_instead_of_brain:
        return None
    indicator = INDICATOR[assessment.risk] if assessment.rules_fired else "info"
    if not assessment.final or ctx.spine_instead_of_brain:
        indicator = max(indicator, "warning", key=RANK.index)
    digest = assessment.identifier
    suggestions = [_suggestion(o, digest) for o in assessment.orders if o.key not in ctx.drafted]
    card: dict[str, Any] = {
        "uuid": stable_uuid(digest, f"card/{sorted(ctx.drafted)}/{ctx.spine_instead_of_brain}"),
        "summary": _summary(assessment, ctx)[:SUMMARY_MAX],
        "indicator": indicator,
        "detail": _detail(assessment, table, ctx),
        "source": {
            "label": f"neckcheck {table.id} {table.version}",
            "url": ctx.plan_definition_url,
            "topic": book.fact_codings("facial-numbness")[0],
        },
        "overrideReasons": list(override_reasons()),
        "links": [
            {"label": "Rule set (FHIR PlanDefinition)", "url": ctx.plan_definition_url, "type": "absolute"}
        ],
    }
    # CDS Hooks 2.0.1 §Link: type "smart" is a SMART app the EHR launches (it adds iss and launch). Every card
    # offers the app; a preliminary one offers it first, since its questions are what the app asks.
    app = {"label": "Open in the neckcheck app", "url": ctx.app_launch_url, "type": "smart"}
    card["links"].insert(0 if not assessment.final else len(card["links"]), app)
    if not assessment.final:
        card["links"].append(
            {
                "label": "Questions to ask (FHIR Questionnaire)",
                "url": _questionnaire_url(ctx, book),
                "type": "absolute",
            }
        )
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "any"
    return card


def _questionnaire_url(ctx: CardContext, book: CodeBook) -> str:
    """The Questionnaire published beside the PlanDefinition (same server, same /fhir base). It links the
    form itself for now; the facts to ask are named in the card's detail (and, per fact, in the
    GuidanceResponse of $assess)."""
    return f"{ctx.fhir_base}/Questionnaire/{book.raw['questionnaire']['id']}"


def _suggestion(order: Order, digest: str) -> dict[str, Any]:
    request = order.resource
    title = request["code"]["text"]
    return {
        "label": f"Propose: {title} ({request['priority']})",
        "uuid": stable_uuid(digest, f"suggestion/{order.key}"),
        "actions": [{"type": "create", "description": f"Draft proposal: {title}", "resource": request}],
    }


def _summary(assessment: Assessment, ctx: CardContext) -> str:
    if assessment.rules_fired:
        top = assessment.rules_fired[0]  # rules are ordered most serious first in the table
        text = f"{assessment.risk.capitalize()} risk: {top.outcome}"
    else:
        text = f"{assessment.risk.capitalize()} risk so far"
    if not assessment.final:
        labels = ", ".join(q.label for q in assessment.to_ask) or "the questionnaire"
        text = f"Preliminary ({text.lower()}): ask about {labels}"
    if ctx.spine_instead_of_brain:
        text = "Brain imaging, not cervical spine only: " + text
    return text


def _detail(assessment: Assessment, table: RuleTable, ctx: CardContext) -> str:
    ra = assessment.risk_assessment
    lines = [
        f"**{table.title}** (rule set {table.id} {table.version}, evaluated {ra['occurrenceDateTime']})",
        "",
    ]
    if ctx.spine_instead_of_brain:
        lines += [
            "**The draft orders image the cervical spine only, but the rules call for imaging of the brain** "
            "(MRI, or CT where MRI is not possible).",
            "",
        ]
    for prediction in ra["prediction"]:
        lines.append(f"- {prediction['rationale']}")
    if not assessment.final:
        lines += ["", f"**{assessment.why_preliminary}**"]
    if assessment.conflicts:
        lines += ["", *[f"- {c}" for c in assessment.conflicts]]
    if ctx.drafted:
        lines += ["", "Already among the draft orders: " + ", ".join(sorted(ctx.drafted)) + "."]
    lines += [
        "",
        "The service proposes; a clinician decides. Orders are draft proposals, never active orders.",
    ]
    return "\n".join(lines)
