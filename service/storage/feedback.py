"""CDS Hooks cards issued and the feedback on them (CDS Hooks 2.0.1 §Feedback).

A card is recorded when it is returned (its indicator and the rules behind it), so feedback - which names
only the card's uuid - can be reported per rule and per indicator. No free text is stored: a clinician's
``userComment`` may name the patient, so only whether there was one is kept.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from service.storage.schema import cards, feedback

log = logging.getLogger("neckcheck.storage")


@dataclass(frozen=True)
class Rate:
    """Feedback on the cards of one rule (or one indicator)."""

    key: str
    cards: int
    accepted: int
    overridden: int

    @property
    def acceptance(self) -> float | None:
        answered = self.accepted + self.overridden
        return None if answered == 0 else self.accepted / answered

    @property
    def override(self) -> float | None:
        answered = self.accepted + self.overridden
        return None if answered == 0 else self.overridden / answered


class FeedbackStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def record_card(self, uuid: str, service_id: str, indicator: str, rules: Iterable[str]) -> None:
        row = {
            "uuid": uuid,
            "service_id": service_id,
            "indicator": indicator,
            "rules": ",".join(rules),
            "issued_at": dt.datetime.now(dt.UTC),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(cards).values(row))
        except IntegrityError:
            pass  # the same card again (ids are deterministic): already recorded
        except (
            SQLAlchemyError
        ) as exc:  # feedback on this card will report as "unknown"; the card still goes out
            log.warning("card not recorded (%s)", type(exc).__name__)

    def record_feedback(self, service_id: str, items: list[dict[str, Any]]) -> None:
        now = dt.datetime.now(dt.UTC)
        rows = []
        for item in items:
            reason = (item.get("overrideReason") or {}).get("reason") or {}
            rows.append(
                {
                    "service_id": service_id,
                    "card_uuid": item["card"],
                    "outcome": item["outcome"],
                    "override_system": reason.get("system"),
                    "override_code": reason.get("code"),
                    "has_comment": bool((item.get("overrideReason") or {}).get("userComment")),
                    "accepted_suggestions": len(item.get("acceptedSuggestions") or []),
                    "outcome_at": item["outcomeTimestamp"],
                    "received_at": now,
                }
            )
        with self.engine.begin() as conn:
            conn.execute(insert(feedback), rows)

    def rates(self) -> tuple[list[Rate], list[Rate]]:
        """(per rule, per indicator); feedback on a card this store never issued counts as 'unknown'."""
        with self.engine.connect() as conn:
            issued = {r.uuid: r for r in conn.execute(select(cards))}
            answers = list(conn.execute(select(feedback.c.card_uuid, feedback.c.outcome)))
        by_rule: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        by_indicator: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for row in issued.values():
            for rule in _rules_of(row):
                by_rule[rule][0] += 1
            by_indicator[row.indicator][0] += 1
        for uuid, outcome in answers:
            card = issued.get(uuid)
            slot = 1 if outcome == "accepted" else 2
            for rule in _rules_of(card) if card is not None else ["unknown"]:
                by_rule[rule][slot] += 1
            by_indicator[card.indicator if card is not None else "unknown"][slot] += 1
        return _rates(by_rule), _rates(by_indicator)


def _rules_of(card: Any) -> list[str]:
    return str(card.rules).split(",") if card.rules else ["(no rule fired: data missing)"]


def _rates(counts: dict[str, list[int]]) -> list[Rate]:
    return [Rate(key, *values) for key, values in sorted(counts.items())]
