"""A simulated EHR for tests: what an EHR puts between a SMART app it launches and its FHIR server.

SMART App Launch 2.x, EHR launch (https://hl7.org/fhir/smart-app-launch/app-launch.html): the EHR opens
``<app launch URL>?iss=<FHIR base>&launch=<opaque>``; the app reads ``{iss}/.well-known/smart-configuration``,
sends the browser to the authorization endpoint with ``aud=iss``, the ``launch`` value, the ``launch`` scope
and a PKCE S256 challenge, exchanges the code for a token at the token endpoint (a public client: no
secret, the code verifier instead), and calls the FHIR API at ``iss`` with ``Authorization: Bearer``.

Everything OAuth here is Authlib's authorization server (``AuthorizationCodeGrant``, ``CodeChallenge``,
``OpenIDCode``, ``ResourceProtector``, ``IntrospectionEndpoint``): this module only says what the EHR knows
(one registered public client, the launches it handed out, the codes and tokens it issued, all in memory)
and adds the SMART parts on top: the ``aud`` and ``launch`` checks and the ``patient`` launch context in the
token response. Approval is automatic, as if the clinician who clicked the launch link were signed in to
the EHR.

A protected resource (neckcheck) verifies the app's tokens at ``/introspect`` (RFC 7662), authenticating
as a confidential client of its own (``client_secret_basic`` or ``client_secret_post``); the answer carries
what SMART App Launch 2.x §Token Introspection lists (``active``, ``scope``, ``client_id``, ``exp``, the
``patient`` context, ``sub`` and ``fhirUser``). :meth:`SmartEhr.introspection` writes the matching entry
of a trusted-issuers file.

The FHIR API at ``iss`` is a reverse proxy to a real FHIR server (``fhir_base``, open, with no auth of its
own) that lets through only requests bearing a token this EHR issued; ``{iss}/metadata`` and the
discovery document are open, as SMART requires. Every answer carries CORS headers for ``app_origin`` (and
only for it), since the app calls the token endpoint and the FHIR API from the browser.

The server is werkzeug's, on 127.0.0.1 and a free port, in a thread of the test process::

    with SmartEhr(fhir_base, client_id="neckcheck", redirect_uri=..., app_origin=...) as ehr:
        page.goto(f"{app}/app/launch?iss={ehr.iss}&launch={ehr.launch_token('p1')}")
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, Response, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

# What the EHR lets an app ask for: the registration scopes of issue 12 (SMART 2.x scope syntax, §3),
# the launch context, and OpenID Connect for the fhirUser claim.
SCOPES_SUPPORTED = (
    "launch",
    "launch/patient",
    "openid",
    "fhirUser",
    "patient/Patient.r",
    "patient/Patient.rs",
    "patient/Observation.rs",
    "patient/QuestionnaireResponse.cruds",
    "patient/RiskAssessment.c",
    "patient/ServiceRequest.c",
)
CODE_LIFETIME = 60  # seconds; RFC 6749 §4.1.2 recommends at most 10 minutes
TOKEN_LIFETIME = 3600
CLINICIAN = "Practitioner/ehr-clinician"  # who is signed in to the EHR and approves every launch
RESOURCE_SERVER = "neckcheck-introspection"  # neckcheck's client id at the introspection endpoint
INTROSPECTION_AUTH = ("client_secret_basic", "client_secret_post")
# Headers a browser app sends to the FHIR API, and the ones of FHIR's answers it needs to read (CORS)
CORS_REQUEST_HEADERS = "Authorization, Content-Type, Accept, Prefer, If-None-Exist, If-Match"
CORS_EXPOSED_HEADERS = "Location, Content-Location, ETag, Last-Modified, WWW-Authenticate"
# Passed through the proxy, both ways (RFC 9110 end-to-end headers a FHIR client or server uses)
REQUEST_HEADERS = ("Content-Type", "Accept", "Prefer", "If-None-Exist", "If-Match", "If-None-Match")
RESPONSE_HEADERS = ("Content-Type", "Location", "Content-Location", "ETag", "Last-Modified")


@dataclass(frozen=True)
class _Client(ClientMixin):
    """The app as the EHR registered it: a public client (no secret) with one redirect URI."""

    client_id: str
    redirect_uri: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scopes that the EHR supports; none requested is an error (RFC 6749 §3.3)."""
        if not scope:
            return None
        return " ".join(s for s in scope.split() if s in SCOPES_SUPPORTED)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri  # exact match, as RFC 9700 §2.1 requires

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"  # public client: SMART 2.x §"client-public", PKCE instead of a secret

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # a public client has none

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"  # no refresh_token: no offline_access here


@dataclass(frozen=True)
class _ResourceServer(ClientMixin):
    """neckcheck as RFC 7662's protected resource: a confidential client that may only introspect."""

    client_id: str
    client_secret: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return ""

    def get_allowed_scope(self, scope: str | None) -> str:
        return ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "introspection" and method in INTROSPECTION_AUTH

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return False


@dataclass(frozen=True)
class _Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    patient: str
    nonce: str | None
    issued_at: float = field(default_factory=time.time)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    # OpenID Connect (authlib.oidc.core.AuthorizationCodeMixin)
    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.issued_at)

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass(frozen=True)
class _Token(TokenMixin):
    access_token: str
    client: _Client
    scope: str
    patient: str
    issued_at: float = field(default_factory=time.time)
    lifetime: float = TOKEN_LIFETIME

    def check_client(self, client: _Client) -> bool:
        return client.client_id == self.client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.lifetime)

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.lifetime

    def is_revoked(self) -> bool:
        return False

    def get_user(self) -> str:
        return CLINICIAN

    def get_client(self) -> _Client:
        return self.client


class _Server(AuthorizationServer):
    """Authlib's Flask authorization server, pointed at one :class:`SmartEhr`'s records."""

    def __init__(self, app: Flask, ehr: SmartEhr) -> None:
        self.ehr = ehr
        super().__init__(app, query_client=ehr._client_named, save_token=ehr._save_token)


class _CodeGrant(AuthorizationCodeGrant):
    """The authorization code grant for public clients only, its codes kept by the EHR."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]  # noqa: RUF012 (Authlib's class attribute)
    server: _Server

    def save_authorization_code(self, code: str, req: OAuth2Request) -> None:
        data = req.payload.data
        self.server.ehr._save_code(
            _Code(
                code=code,
                client_id=req.client.client_id,
                redirect_uri=req.payload.redirect_uri,
                scope=req.scope,
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                patient=self.server.ehr._launch_patient(data["launch"]),
                nonce=data.get("nonce"),
            )
        )

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        return self.server.ehr._code(code, client)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        self.server.ehr._forget_code(authorization_code)  # one use only (RFC 6749 §4.1.2)

    def authenticate_user(self, authorization_code: _Code) -> str:
        return CLINICIAN


class _S256Only(CodeChallenge):
    """PKCE as SMART 2.x requires it (§"Considerations for PKCE Support"): a ``code_challenge`` on every
    authorization request, method ``S256`` only (``plain`` is refused)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 (Authlib's class attribute)

    def validate_code_challenge(self, grant: _CodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE is required: code_challenge with code_challenge_method=S256")
        super().validate_code_challenge(grant, redirect_uri)


class _SmartLaunch:
    """The SMART parts of the grant (an Authlib grant extension, like ``CodeChallenge``): an EHR launch
    must name this EHR's FHIR base as ``aud`` (§"Obtain authorization code": the server SHALL reject a
    mismatch), carry a ``launch`` value this EHR handed out, and ask for the ``launch`` scope; the token
    response then carries the launch context (``patient``)."""

    def __init__(self, ehr: SmartEhr) -> None:
        self.ehr = ehr

    def __call__(self, grant: _CodeGrant) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.check_launch)
        grant.register_hook("after_create_token_response", self.add_context)

    def check_launch(self, grant: _CodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("aud", "").rstrip("/") != self.ehr.iss:
            raise InvalidRequestError(f"aud must be this EHR's FHIR base {self.ehr.iss}")
        if not self.ehr._launch_patient(data.get("launch", "")):
            raise InvalidRequestError("unknown launch: not a launch this EHR started")
        if "launch" not in (grant.request.payload.scope or "").split():
            raise InvalidScopeError("an EHR launch asks for the 'launch' scope")

    def add_context(self, grant: _CodeGrant, response: tuple[int, dict[str, Any], Any]) -> None:
        _, token, _ = response
        token["patient"] = grant.request.authorization_code.patient  # SMART 2.x §"Launch context"


class _OpenId(OpenIDCode):
    """An ``id_token`` when ``openid`` is granted, with the ``fhirUser`` claim (SMART 2.x §"Scopes for
    requesting identity data"), signed RS256 with the EHR's key published at its ``jwks_uri``."""

    def __init__(self, ehr: SmartEhr) -> None:
        super().__init__(require_nonce=False)
        self.ehr = ehr

    def resolve_client_private_key(self, client: _Client) -> RSAKey:
        return self.ehr._key

    def get_client_algorithm(self, client: _Client) -> str:
        return "RS256"

    def get_client_claims(self, client: _Client) -> dict[str, Any]:
        return {"iss": self.ehr.iss, "aud": [client.client_id], "exp": int(time.time()) + TOKEN_LIFETIME}

    def get_encode_header(self, client: _Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": self.ehr._key.kid or ""}

    def exists_nonce(self, nonce: str, req: OAuth2Request) -> bool:
        return False  # nonces are optional here; a reused one is no concern of a test EHR

    def generate_user_info(self, user: str, scope: str) -> UserInfo:
        info = UserInfo(sub=user)
        if "fhirUser" in scope.split():
            info["fhirUser"] = f"{self.ehr.iss}/{user}"
        return info


class _Introspection(IntrospectionEndpoint):
    """RFC 7662 at ``/introspect``: only the registered resource server may ask, about the EHR's access
    tokens; an unknown, expired or revoked token is ``{"active": false}`` (Authlib answers that itself)."""

    CLIENT_AUTH_METHODS = list(INTROSPECTION_AUTH)  # noqa: RUF012 (Authlib's class attribute)
    server: _Server

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
        ehr = self.server.ehr
        with ehr._lock:
            ehr._introspections += 1
        return ehr._token(token_string)

    def check_permission(self, token: _Token, client: ClientMixin, request: OAuth2Request) -> bool:
        return client.get_client_id() == self.server.ehr.resource_server.client_id

    def introspect_token(self, token: _Token) -> dict[str, Any]:
        """SMART App Launch 2.x §Token Introspection: the scopes, the client, the expiry, the launch context
        and, with ``openid``, who the user is."""
        iss = self.server.ehr.iss
        answer: dict[str, Any] = {
            "active": True,
            "scope": token.scope,
            "client_id": token.client.client_id,
            "token_type": "Bearer",
            "exp": int(token.issued_at + token.lifetime),
            "iat": int(token.issued_at),
            "iss": iss,
            "aud": iss,
            "patient": token.patient,
        }
        if "openid" in token.scope.split():
            answer |= {"sub": CLINICIAN, "fhirUser": f"{iss}/{CLINICIAN}"}
        return answer


class _Bearer(BearerTokenValidator):
    def __init__(self, ehr: SmartEhr) -> None:
        super().__init__(realm="simulated-ehr")
        self.ehr = ehr

    def authenticate_token(self, token_string: str) -> _Token | None:
        return self.ehr._token(token_string)


class _Quiet(WSGIRequestHandler):
    """No access log line per request on the test's stderr (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SmartEhr:
    """The simulated EHR, serving from construction until :meth:`close` (or the ``with`` block's end).

    ``fhir_base``: the real FHIR server behind the EHR's FHIR API (``http://host:port/fhir``).
    ``client_id``, ``redirect_uri``: the app's registration (a public client).
    ``app_origin``: the one origin whose browser calls get CORS headers (``http://127.0.0.1:<port>``).
    """

    def __init__(self, fhir_base: str, client_id: str, redirect_uri: str, app_origin: str) -> None:
        self.fhir_base = fhir_base.rstrip("/")
        self.client = _Client(client_id, redirect_uri)
        self.resource_server = _ResourceServer(RESOURCE_SERVER, secrets.token_urlsafe(24))
        self.app_origin = app_origin.rstrip("/")
        self._lock = threading.Lock()
        self._introspections = 0
        self._launches: dict[str, str] = {}
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, _Token] = {}
        self._revoked: dict[str, _Token] = {}
        self._key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._app(), threaded=True, request_handler=_Quiet
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.iss = f"{self.url}/fhir"  # the FHIR base the EHR hands to the app, and the token audience
        # a short poll: close() waits for the loop to notice the shutdown
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def launch_token(self, patient_id: str) -> str:
        """A new opaque ``launch`` value for ``/app/launch?iss=..&launch=..``, bound to ``patient_id``
        (what the EHR knows when the clinician clicks the app link with that patient's chart open)."""
        launch = secrets.token_urlsafe(16)
        with self._lock:
            self._launches[launch] = patient_id
        return launch

    def issued_tokens(self) -> int:
        """How many access tokens this EHR has issued (a test can check that a launch got one)."""
        with self._lock:
            return len(self._tokens) + len(self._revoked)

    def issue_token(self, patient_id: str, scope: str, lifetime: float = TOKEN_LIFETIME) -> str:
        """An access token as if a launch for ``patient_id`` had ended in one with ``scope`` (the launch
        itself is tested above); ``lifetime`` in seconds."""
        issued = _Token(secrets.token_urlsafe(32), self.client, scope, patient_id, lifetime=lifetime)
        with self._lock:
            self._tokens[issued.access_token] = issued
        return issued.access_token

    def introspections(self) -> int:
        """How many tokens the introspection endpoint has been asked about (a test can see a cache)."""
        with self._lock:
            return self._introspections

    def introspection(self, folder: Path, auth_method: str = "client_secret_basic") -> dict[str, str]:
        """The ``introspection`` entry of a trusted-issuers file in ``folder`` for this EHR, its client
        secret written beside it."""
        (folder / "introspection.secret").write_text(self.resource_server.client_secret + "\n")
        return {
            "endpoint": f"{self.url}/introspect",
            "clientId": self.resource_server.client_id,
            "clientSecretFile": "introspection.secret",
            "authMethod": auth_method,
        }

    def revoke_tokens(self) -> None:
        """Revoke every access token issued so far (as an EHR does at sign-out): the FHIR API then answers
        401, so a test can see how the app takes a refusal."""
        with self._lock:
            self._revoked.update(self._tokens)
            self._tokens.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> SmartEhr:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # --- what the EHR knows (used by the Authlib classes above) ---

    def _client_named(self, client_id: str) -> ClientMixin | None:
        known: dict[str, ClientMixin] = {c.client_id: c for c in (self.client, self.resource_server)}
        return known.get(client_id)

    def _launch_patient(self, launch: str) -> str:
        with self._lock:
            return self._launches.get(launch, "")

    def _save_code(self, code: _Code) -> None:
        with self._lock:
            self._codes[code.code] = code

    def _code(self, code: str, client: _Client) -> _Code | None:
        with self._lock:
            found = self._codes.get(code)
        if found is None or found.client_id != client.client_id:
            return None
        return found if time.time() < found.issued_at + CODE_LIFETIME else None

    def _forget_code(self, code: _Code) -> None:
        with self._lock:
            self._codes.pop(code.code, None)

    def _save_token(self, token: dict[str, Any], req: OAuth2Request) -> None:
        issued = _Token(token["access_token"], req.client, token["scope"], req.authorization_code.patient)
        with self._lock:
            self._tokens[issued.access_token] = issued

    def _token(self, access_token: str) -> _Token | None:
        with self._lock:
            return self._tokens.get(access_token)

    # --- the HTTP side ---

    def _app(self) -> Flask:
        app = Flask(__name__)
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": TOKEN_LIFETIME}
        server = _Server(app, self)
        server.scopes_supported = list(SCOPES_SUPPORTED)
        server.register_grant(_CodeGrant, [_S256Only(required=True), _SmartLaunch(self), _OpenId(self)])
        server.register_endpoint(_Introspection)
        protected = ResourceProtector()
        protected.register_token_validator(_Bearer(self))

        @app.after_request
        def cors(response: Response) -> Response:
            """CORS (Fetch standard) for the app's origin only; preflights get the methods and headers."""
            response.vary.add("Origin")
            if request.headers.get("Origin") == self.app_origin:
                response.headers["Access-Control-Allow-Origin"] = self.app_origin
                response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
                if request.method == "OPTIONS":
                    response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE"
                    response.headers["Access-Control-Allow-Headers"] = CORS_REQUEST_HEADERS
                    response.headers["Access-Control-Max-Age"] = "600"
            return response

        @app.get("/fhir/.well-known/smart-configuration")
        def smart_configuration() -> Response:
            return jsonify(self._configuration())

        @app.get("/jwks")
        def jwks() -> Response:
            return jsonify({"keys": [self._key.as_dict(private=False)]})

        @app.get("/authorize")
        def authorize() -> Response:
            try:
                grant = server.get_consent_grant(end_user=CLINICIAN)
            except OAuth2Error as error:  # to the redirect URI if it is the client's, else a 400 here
                answer: Response = server.handle_error_response(None, error)
                return answer
            # no login or consent page: the clinician is signed in to the EHR and launched the app
            approved: Response = server.create_authorization_response(grant_user=CLINICIAN, grant=grant)
            return approved

        @app.post("/token")
        def token() -> Response:
            answer: Response = server.create_token_response()
            return answer

        @app.post("/introspect")
        def introspect() -> Response:
            answer: Response = server.create_endpoint_response(_Introspection.ENDPOINT_NAME)
            return answer

        @app.get("/fhir/metadata")
        def metadata() -> Response:
            return self._forward("metadata")  # open: a client reads it before it has a token

        @app.route("/fhir", defaults={"path": ""}, methods=["GET", "POST"])
        @app.route("/fhir/<path:path>", methods=["GET", "POST", "PUT", "DELETE"])
        def fhir(path: str) -> Response:
            with protected.acquire():  # 401 with WWW-Authenticate (RFC 6750 §3) unless a token we issued
                return self._forward(path)

        return app

    def _configuration(self) -> dict[str, Any]:
        """The discovery document, SMART App Launch 2.x §"Metadata" (``.well-known/smart-configuration``)."""
        return {
            "issuer": self.iss,
            "jwks_uri": f"{self.url}/jwks",
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "token_endpoint_auth_methods_supported": ["none"],
            "introspection_endpoint": f"{self.url}/introspect",
            "grant_types_supported": ["authorization_code"],
            "response_types_supported": ["code"],
            "scopes_supported": list(SCOPES_SUPPORTED),
            "code_challenge_methods_supported": ["S256"],
            "capabilities": [
                "launch-ehr",
                "client-public",
                "context-ehr-patient",
                "permission-patient",
                "permission-v2",
                "sso-openid-connect",
            ],
        }

    def _forward(self, path: str) -> Response:
        """The request, sent on to the real FHIR server without the EHR's token; its answer sent back
        with the server's own base replaced by ``iss`` in links, so the app stays behind the EHR."""
        target = f"{self.fhir_base}/{path}" if path else self.fhir_base
        if request.query_string:
            target += "?" + request.query_string.decode()
        headers = {name: request.headers[name] for name in REQUEST_HEADERS if name in request.headers}
        try:
            upstream = requests.request(
                request.method,
                target,
                data=request.get_data(),
                headers=headers,
                timeout=30,
                allow_redirects=False,
            )
        except requests.RequestException as error:  # as a gateway says it (RFC 9110 §15.6.3), in FHIR
            issue = {
                "severity": "error",
                "code": "transient",
                "diagnostics": f"FHIR server unreachable: {error}",
            }
            outcome = jsonify({"resourceType": "OperationOutcome", "issue": [issue]})
            outcome.status_code = 502
            outcome.content_type = "application/fhir+json"
            return outcome
        body = upstream.content.replace(self.fhir_base.encode(), self.iss.encode())
        answer = Response(body, status=upstream.status_code)
        for name in RESPONSE_HEADERS:
            if name in upstream.headers:
                answer.headers[name] = upstream.headers[name].replace(self.fhir_base, self.iss)
        return answer


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL: the origin a browser sends for a page served from it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
