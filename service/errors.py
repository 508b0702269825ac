"""neckcheck's one error tree.

Every failure a caller can cause is one of these. Each class carries its HTTP status and its FHIR
issue code (R4 ValueSet ``issue-type``), so the HTTP layer and the CLI turn any of them into an
OperationOutcome in one place and nothing else needs a ``try/except`` of its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, and where (a FHIRPath-like location), for OperationOutcome.issue."""

    message: str
    location: str | None = None


class NeckcheckError(Exception):
    """Base: the request cannot be answered; ``problems`` says why."""

    status = 500
    issue_code = "exception"

    def __init__(self, message: str, location: str | None = None, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems: list[Problem] = problems if problems is not None else [Problem(message, location)]

    def __str__(self) -> str:
        return "; ".join(p.message for p in self.problems)


class InvalidInput(NeckcheckError):
    """The body is not readable JSON, not a Bundle, or a field has the wrong type."""

    status = 400
    issue_code = "structure"


class Unprocessable(NeckcheckError):
    """The Bundle is well formed but cannot be assessed (mixed patients, no subject, no usable fact)."""

    status = 422
    issue_code = "processing"


class NoFacts(Unprocessable):
    """The Bundle is readable but no entry gives any neckcheck fact (a CDS Hooks call then shows no card)."""


class TooLarge(NeckcheckError):
    """The body or the number of entries is over the configured limit."""

    status = 413
    issue_code = "too-costly"


class Unsupported(NeckcheckError):
    """The Content-Type is not one the service reads."""

    status = 415
    issue_code = "not-supported"


class NotFound(NeckcheckError):
    """No such route or resource."""

    status = 404
    issue_code = "not-found"


class MethodNotAllowed(NeckcheckError):
    """The route exists but not for this HTTP method."""

    status = 405
    issue_code = "not-supported"


class Unauthorized(NeckcheckError):
    """No valid bearer token from a trusted issuer (CDS Hooks 2.0 §Trusting CDS Clients)."""

    status = 401
    issue_code = "login"


class PrefetchUnavailable(NeckcheckError):
    """Data the service needs was neither prefetched nor obtainable from the FHIR server."""

    status = 412
    issue_code = "incomplete"


class RemoteExportError(NeckcheckError):
    """A FHIR server could not give neckcheck screen its Bulk Data export: refused the client or the
    request, failed the job, or the files did not arrive (a 502 had it been an HTTP request)."""

    status = 502
    issue_code = "exception"


class NotSupportedByServer(RemoteExportError):
    """The FHIR server does not offer something the export needs ($export at that level, SMART Backend
    Services, a signing algorithm); the message names it."""

    issue_code = "not-supported"


class StorageUnavailable(Exception):
    """The database cannot take records now (lost connection, timeout, schema not there yet): a transient
    state, so the records wait in the spool. ``lines`` are the records not stored, as spool lines.

    Raised and caught inside service/storage only; a caller never sees it (answers do not wait on storage).
    """

    def __init__(self, cause: BaseException, lines: list[str]):
        super().__init__(f"database unavailable ({type(cause).__name__})")
        self.cause = cause
        self.lines = lines


class ConfigError(RuntimeError):
    """A setting is invalid: the service refuses to start and says which one.

    A RuntimeError because that is what gunicorn reports as one line ("Error: ...", exit 1) instead of a
    traceback when the preloaded app fails to load (gunicorn.app.base.BaseApplication.run): the container,
    ``neckcheck serve`` and ``make run`` all preload.
    """
