"""An EHR to export from: the real FHIR server (SEKMET) behind the fault proxy, with SMART Backend Services
clients registered by their public keys, and a generated population loaded into it.

SEKMET is started with ``server_auth`` ``smart`` (its token endpoint verifies the client's signed assertion
against the JWK Set registered for it, and checks every request's token and scopes) and a static bearer
token of the tests' own for loading data. The population is benchmarks/bulk_export.py's, loaded with
one transaction of ``PUT``s per patient; a Group holds every other patient.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from benchmarks.bulk_export import write_export
from tests.fhir_server import FHIR_JSON, FhirServer, start
from tests.live import free_port
from tests.screen.fault_proxy import FaultProxy, proxying
from tests.screen.support import read_ndjson

CLIENT, EC_CLIENT, NARROW = "neckcheck-screen", "neckcheck-screen-ec", "observations-only"
LOADER = "loader-token-of-the-tests"
GROUP = "neuro-clinic"
TOKEN_SECONDS = 8


@dataclass
class Keys:
    """The client's key pair in the forms a user has them: an RSA PEM (RS384) and a P-384 JWK (ES384)."""

    rsa_pem: Path
    ec_jwk: Path
    public_rsa: dict[str, Any]  # the JWK Sets registered with the server
    public_ec: dict[str, Any]

    @classmethod
    def make(cls, folder: Path) -> Keys:
        folder.mkdir(parents=True, exist_ok=True)
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ec_key = ec.generate_private_key(ec.SECP384R1())
        pem = folder / "client.pem"
        pem.write_bytes(
            rsa_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key))
        private.update(kid="ec-1", alg="ES384")
        (folder / "client.jwk").write_text(json.dumps(private))
        public_rsa = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
        public_ec = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
        public_rsa.update(kid="rsa-1", alg="RS384")
        public_ec.update(kid="ec-1", alg="ES384")
        return cls(pem, folder / "client.jwk", {"keys": [public_rsa]}, {"keys": [public_ec]})


@dataclass
class Ehr:
    server: FhirServer
    proxy: FaultProxy
    keys: Keys
    files: Path  # the population as NDJSON files, as generated
    group: list[str]  # "Patient/<id>" of the Group's members

    @property
    def url(self) -> str:
        return self.proxy.url

    def client_args(self, key: str = "pem") -> list[str]:
        """--client-id, --key and --kid for the registered client. SEKMET checks scopes on its own
        status and file endpoints as on ``*`` (read, and delete to cancel), so that is the scope asked."""
        if key == "jwk":
            return ["--client-id", EC_CLIENT, "--key", str(self.keys.ec_jwk), "--scope", "system/*.rds"]
        return [
            "--client-id",
            CLIENT,
            "--key",
            str(self.keys.rsa_pem),
            "--kid",
            "rsa-1",
            "--scope",
            "system/*.rds",
        ]


def settings(proxy_url: str, keys: Keys) -> dict[str, Any]:
    return {
        "base_url": proxy_url,
        # the generated data keeps to what neckcheck reads (its Encounters have no class): stored as given
        "validation": {"inbound": "warn"},
        "server_auth": {
            "types": ["smart", "bearer"],
            "tokens": [LOADER],
            "token_lifetime": TOKEN_SECONDS,
            "smart_clients": [
                # one key each: SEKMET 0.1.1 tries every key of a client's set and fails (500) on a key
                # of another type than the assertion's
                {"client_id": CLIENT, "jwks": keys.public_rsa, "scopes": "system/*.rds"},
                {"client_id": EC_CLIENT, "jwks": keys.public_ec, "scopes": "system/*.rds"},
                {"client_id": NARROW, "jwks": keys.public_rsa, "scopes": "system/Observation.rs"},
            ],
        },
    }


def load(server: FhirServer, folder: Path) -> None:
    """Every resource of the generated files into the server, one transaction per patient."""
    by_patient: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.ndjson")):
        for resource in read_ndjson(path):
            owner = (
                resource["id"] if resource["resourceType"] == "Patient" else resource["subject"]["reference"]
            )
            by_patient.setdefault(owner.removeprefix("Patient/"), []).append(resource)
    headers = {**FHIR_JSON, "Authorization": f"Bearer {LOADER}"}
    for resources in by_patient.values():
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                for r in resources
            ],
        }
        answer = requests.post(server.url, data=json.dumps(bundle), headers=headers, timeout=120)
        assert answer.status_code == 200, answer.text[:2000]


def add_group(server: FhirServer, members: list[str]) -> None:
    group = {
        "resourceType": "Group",
        "id": GROUP,
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": m}} for m in members],
    }
    headers = {**FHIR_JSON, "Authorization": f"Bearer {LOADER}"}
    answer = requests.put(f"{server.url}/Group/{GROUP}", data=json.dumps(group), headers=headers, timeout=60)
    assert answer.status_code in (200, 201), answer.text[:2000]


def only(folder: Path, patients: set[str], target: Path) -> Path:
    """The generated files cut down to ``patients``' resources: what a Group export should hold."""
    target.mkdir(parents=True)
    for path in sorted(folder.glob("*.ndjson")):
        kept = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if _owner(json.loads(line)) in patients
        ]
        (target / path.name).write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    return target


def _owner(resource: dict[str, Any]) -> str:
    if resource["resourceType"] == "Patient":
        return f"Patient/{resource['id']}"
    return str(resource["subject"]["reference"])


@contextmanager
def running_ehr(folder: Path, patients: int) -> Iterator[Ehr]:
    keys = Keys.make(folder / "keys")
    proxy_port, server_port = free_port(), free_port()
    with ExitStack() as stack:
        proxy = stack.enter_context(proxying(proxy_port, server_port))
        server = start(folder / "server", settings(proxy.url, keys), port=server_port)
        stack.callback(server.stop)
        export = write_export(folder / "generated", patients, seed=23)
        load(server, export.folder)
        members = export.patients[::2]
        add_group(server, members)
        yield Ehr(server, proxy, keys, export.folder, members)
