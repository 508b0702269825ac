"""Gather the data of one hook call: prefetch first, the EHR's FHIR server for what is missing.

CDS Hooks 2.0.1 §Prefetch: a key present with ``null`` means the EHR has no such data; a key absent means
the EHR did not prefetch it. A value that is not the FHIR resource the template asks for (an HTML error
page, a wrong resourceType) counts as absent. What is still missing after the fallback is a 412.

Every read of one call, pages of a paged prefetch included, shares one ``Deadline``
(NECKCHECK_CDS_FHIR_DEADLINE): a read started after it fails at once, so a slow EHR costs the hook the
deadline, not a sum of timeouts.

The FHIR server is contacted only if the caller may name it (service/security/fhir_servers.py). An
unlisted ``fhirServer`` is not refused as such: complete prefetch never needs it and is still assessed.
Only when a fetch would be needed (a key absent, or a paged prefetch) is the call a 412 naming
``fhirServer``, before any request leaves, and the refusal is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from service.errors import PrefetchUnavailable, Problem
from service.fhir_base import base_of
from service.reader.client import Deadline, FhirClient, FhirServerError, TokenRefusedByServer
from service.reader.searches import OBSERVATIONS, PATIENT, RESPONSES
from service.security.fhir_servers import FhirServerPolicy

log = logging.getLogger("neckcheck.cds")

EXPECTED_TYPE = {PATIENT: "Patient", OBSERVATIONS: "Bundle", RESPONSES: "Bundle"}
NEEDED = (OBSERVATIONS, RESPONSES)  # the engine's input; the Patient is context only


class NeededDataRefused(PrefetchUnavailable):
    """Needed data is missing because the FHIR server refused the token: the same 412 to a hook; the
    clinician app, which must not tell a refused token from an unknown one, answers it as a 401."""


@dataclass(frozen=True)
class Gathered:
    resources: list[dict[str, Any]]
    fetched: tuple[str, ...]  # keys that came from the FHIR server
    failures: tuple[str, ...]  # fallback fetches that failed (for metrics and logs; never patient data)


def gather(
    request: dict[str, Any], templates: dict[str, str], client: FhirClient, policy: FhirServerPolicy
) -> Gathered:
    """Every resource for the request's patient; ``PrefetchUnavailable`` when needed data is missing.

    ``policy`` says which FHIR servers this caller may make us contact.
    """
    deadline = client.deadline()  # one budget for every FHIR read of this hook call
    patient_id = request["context"]["patientId"]
    prefetch = request.get("prefetch") or {}
    server = request.get("fhirServer")
    token = (request.get("fhirAuthorization") or {}).get("access_token")
    resources: list[dict[str, Any]] = []
    fetched: list[str] = []
    failures: list[str] = []
    missing: list[Problem] = []
    refused = False
    for key, template in templates.items():
        if key in prefetch and prefetch[key] is None:
            continue  # the EHR says: no such data
        value = prefetch.get(key)
        if isinstance(value, dict) and _is_expected(key, value):
            resources += _resources_of(key, value, server, token, client, deadline, policy)
            continue
        if not server:
            if key in NEEDED:
                missing.append(
                    Problem(
                        f"prefetch {key!r} is missing or not a FHIR {EXPECTED_TYPE[key]}, "
                        "and the request has no fhirServer to fetch it from",
                        key,
                    )
                )
            continue
        _check_allowed(server, policy)
        path = template.replace("{{context.patientId}}", patient_id)
        try:
            resources += (
                [client.read(server, path, token, deadline)]
                if key == PATIENT
                else client.search(server, path, token, deadline)
            )
            fetched.append(key)
        except FhirServerError as error:
            failures.append(key)
            if key in NEEDED:
                missing.append(Problem(f"prefetch {key!r} is missing and fetching it failed: {error}", key))
                refused = refused or isinstance(error, TokenRefusedByServer)
    if missing:
        raise (NeededDataRefused if refused else PrefetchUnavailable)(
            "needed data is missing", problems=missing
        )
    return Gathered(resources, tuple(fetched), tuple(failures))


def _check_allowed(server: str, policy: FhirServerPolicy) -> None:
    """Raise the 412 for a ``fhirServer`` this caller may not make us contact; log it (never the token)."""
    if policy.permits(server):
        return
    base = base_of(server)
    log.warning(
        "hook call refused: fhirServer %s is not allowed for %s; nothing was fetched",
        repr(str(base) if base else "(not a plain http(s) base URL)")[:120],
        policy.owner,
    )
    raise PrefetchUnavailable(
        "needed data is not prefetched, and fhirServer is not one this service may call for this client "
        "(its trusted issuer's fhirServers; loopback only in insecure dev): send complete prefetch",
        "fhirServer",
    )


def _is_expected(key: str, value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == EXPECTED_TYPE[key]


def _resources_of(
    key: str,
    value: dict[str, Any],
    server: str | None,
    token: str | None,
    client: FhirClient,
    deadline: Deadline,
    policy: FhirServerPolicy,
) -> list[dict[str, Any]]:
    if key == PATIENT:
        return [value]
    found = [
        e["resource"]
        for e in value.get("entry") or []
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and (e.get("search") or {}).get("mode", "match") == "match"
    ]
    following = next(
        (
            link.get("url")
            for link in value.get("link") or []
            if isinstance(link, dict) and link.get("relation") == "next"
        ),
        None,
    )
    base = (server or "").rstrip("/") + "/"
    if following and server and following.startswith(base):
        # a paged prefetch (CDS Hooks 3.0 ballot §Prefetch): fetch the remaining pages from the server
        _check_allowed(server, policy)
        try:
            found += client.search(server, following[len(base) :], token, deadline)
        except FhirServerError as error:
            raise PrefetchUnavailable(
                f"prefetch {key!r} is paged and its next page failed: {error}", key
            ) from error
    elif following:
        raise PrefetchUnavailable(
            f"prefetch {key!r} is paged but its next page is not on the fhirServer", key
        )
    return found
