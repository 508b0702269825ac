"""neckcheck: escalation rules for facial numbness with neck pain, as a FHIR R4 service.

Public API: ``assess`` (the engine as a library), ``populate`` (SDC $populate: the answer Parameters) and
``create_app`` (the Flask app factory).
"""

from __future__ import annotations

from typing import Any

from service.assess import assess
from service.sdc.populate import populate_parameters as populate

__all__ = ["assess", "create_app", "populate"]


def create_app(config: dict[str, Any] | None = None) -> Any:
    """Imported lazily so ``from service import assess`` does not pull in Flask."""
    from service.app import create_app as factory

    return factory(config)
