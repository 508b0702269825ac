"""FHIR server base URLs in the one form two of them are compared in: scheme and host lower-cased, the default
port made explicit, the path without its trailing slash. A URL with user info, a query or a fragment is
never a base URL. Used by the trusted-issuers file's schema and by the policy of which servers a caller may
make neckcheck contact (service/security/fhir_servers.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, order=True)
class FhirBase:
    """A FHIR server base URL in the form two URLs are compared in."""

    scheme: str
    host: str
    port: int
    path: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def base_of(url: str) -> FhirBase | None:
    """The normalised base of an http(s) URL; None for anything that is not a plain base URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, or an unbalanced IPv6 bracket
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return None
    return FhirBase(scheme, host, port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/"))


def is_loopback(base: FhirBase) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``, written literally (no name is resolved here)."""
    if base.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(base.host).is_loopback
    except ValueError:
        return False
