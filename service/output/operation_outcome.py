"""OperationOutcome: the one shape every error (and every informational note) takes."""

from __future__ import annotations

from typing import Any

from service.errors import NeckcheckError, Problem


def operation_outcome(problems: list[Problem], code: str, severity: str = "error") -> dict[str, Any]:
    issues = []
    for problem in problems:
        issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": problem.message}
        if problem.location:
            issue["expression"] = [problem.location]
        issues.append(issue)
    return {"resourceType": "OperationOutcome", "issue": issues}


def from_error(error: NeckcheckError) -> dict[str, Any]:
    return operation_outcome(error.problems, error.issue_code)
