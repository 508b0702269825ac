"""Which FHIR servers a hook call may make neckcheck contact.

CDS Hooks 2.0.1 §FHIR Resource Access: the hook request names ``fhirServer`` and hands an access token for
it, and the service fetches what prefetch did not bring. Without a limit, anyone holding a valid token could
make neckcheck send requests (with the EHR's token attached) to any host it can reach: a server-side request
forgery path that can also leak the token. So each trusted issuer lists the base URLs it may send
(``fhirServers`` in the trusted-issuers file), and with ``NECKCHECK_INSECURE_DEV=1`` only loopback hosts may
be called. Redirects are never followed (service/cds/fhir_client.py), so a listed server cannot send us on.

Base URLs are compared normalised: scheme and host lower-cased, the default port made explicit, the path
without its trailing slash. A URL with user info, a query or a fragment is never a base URL and never
matches.
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


@dataclass(frozen=True)
class FhirServerPolicy:
    """The FHIR servers one caller may make us contact; ``owner`` names the caller in a log line."""

    owner: str
    allowed: frozenset[FhirBase] = frozenset()
    loopback_only: bool = False

    @classmethod
    def insecure_dev(cls) -> FhirServerPolicy:
        return cls("insecure dev (loopback only)", loopback_only=True)

    def permits(self, url: str) -> bool:
        base = base_of(url)
        if base is None:
            return False
        return is_loopback(base) if self.loopback_only else base in self.allowed
