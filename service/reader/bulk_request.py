"""What ``neckcheck screen INPUT`` asks of a FHIR server: the endpoint INPUT names (its base and the export
level: system, all patients, or a Group), and the export's parameters (Bulk Data Access IG 2.0.0, "Query
Parameters").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from service.errors import RemoteExportError

_GROUP = re.compile(r"(.*)/Group/([A-Za-z0-9\-.]{1,64})")
_LOOPBACK = ("localhost",)


@dataclass(frozen=True)
class Endpoint:
    """What INPUT names: the FHIR base and the export level (system, all patients, or one Group)."""

    base: str
    level: str  # "system", "patient" or "group"
    group: str | None = None

    @property
    def kickoff(self) -> str:
        return {
            "system": f"{self.base}/$export",
            "patient": f"{self.base}/Patient/$export",
            "group": f"{self.base}/Group/{self.group}/$export",
        }[self.level]

    @property
    def what(self) -> str:
        return {"system": "system-level", "patient": "Patient-level", "group": "Group-level"}[self.level]


def endpoint(url: str) -> Endpoint | None:
    """The export ``url`` names, or None when it is not an http(s) URL (a path on disk). Raises
    RemoteExportError for a plain-http URL to another machine: the token would travel in clear."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    if parts.query or parts.fragment:
        raise RemoteExportError(f"{url}: give the FHIR endpoint without a query (?...) or fragment")
    if parts.scheme == "http" and not _loopback(parts.hostname or ""):
        raise RemoteExportError(f"{url}: use https (http only to this machine): a token would go in clear")
    path = re.sub(r"/\$export$", "", url.rstrip("/"))
    if found := _GROUP.fullmatch(path):
        return Endpoint(found.group(1), "group", found.group(2))
    if path.endswith("/Patient"):
        return Endpoint(path.removesuffix("/Patient"), "patient")
    return Endpoint(path, "system")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() in _LOOPBACK


@dataclass(frozen=True)
class Request:
    """One export: where, which types, changed since when, and the filters to ask for if allowed."""

    endpoint: Endpoint
    types: tuple[str, ...]
    since: str | None = None
    type_filters: tuple[str, ...] = ()

    def params(self, filters: bool) -> dict[str, str]:
        params = {"_outputFormat": "application/fhir+ndjson", "_type": ",".join(self.types)}
        if self.since:
            params["_since"] = self.since
        if filters and self.type_filters:
            # each query percent-encoded whole: its own commas are not the list's (IG 2.0, _typeFilter)
            params["_typeFilter"] = ",".join(quote(f, safe="?=|") for f in self.type_filters)
        return params
