"""Which FHIR servers a hook call may make neckcheck contact.

CDS Hooks 2.0.1 §FHIR Resource Access: the hook request names ``fhirServer`` and hands an access token for
it, and the service fetches what prefetch did not bring. Without a limit, anyone holding a valid token could
make neckcheck send requests (with the EHR's token attached) to any host it can reach: a server-side request
forgery path that can also leak the token. So each trusted issuer lists the base URLs it may send
(``fhirServers`` in the trusted-issuers file), and with ``NECKCHECK_INSECURE_DEV=1`` only loopback hosts may
be called. Redirects are never followed (service/reader/client.py), so a listed server cannot send us on.

Base URLs are compared normalised: scheme and host lower-cased, the default port made explicit, the path
without its trailing slash. A URL with user info, a query or a fragment is never a base URL and never
matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.fhir_base import FhirBase, base_of, is_loopback


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
