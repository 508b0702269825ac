"""The trusted-issuers file (NECKCHECK_TRUSTED_ISSUERS_FILE): which EHRs may call, and what they may send.

``{"issuers": [{"iss", "jwksFile", "jkuAllowlist", "fhirServers", "introspection"}]}``. A ``fhirServers`` item
is a base URL, or ``{"url", "checksTokens"}`` where the operator states that the server checks the clinician
app's tokens itself (the app may then use it without introspection). ``introspection`` names the issuer's
RFC 7662 endpoint and neckcheck's credentials there, which the clinician app needs to verify a token before
it reads anything. An entry with a key we do not know is
refused (a misspelt ``jwksfile`` must not silently leave an issuer without keys); other top-level keys
(a ``$comment``, say) are ignored. Every fault is a ``ConfigError`` naming the file and the entry, so the
service refuses to start rather than rejecting every request later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from service.errors import ConfigError
from service.fhir_base import FhirBase, base_of, is_loopback
from service.payloads import compiled, flatten

_ENTRY_KEYS = ("iss", "jwksFile", "jkuAllowlist", "fhirServers", "introspection")
_SERVER_KEYS = ("url", "checksTokens")
_INTROSPECTION_KEYS = ("endpoint", "clientId", "clientSecretFile", "authMethod")
_FILE_SHAPE = "expected an object with an 'issuers' list"
# RFC 7662 §2.1: the endpoint requires client authentication; these are RFC 6749 §2.3.1's two ways
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


def _says(text: str) -> dict[str, str | list[Any] | dict[Any, Any]]:
    """The same message for a wrong type and for null."""
    return {"invalid": text, "null": text}


def _required_text(what: str) -> fields.String:
    """A required, non-empty string; ``what`` it must be, said the same way for every fault."""
    message = f"must be a non-empty {what}"
    return fields.String(
        required=True,
        validate=validate.Length(min=1, error=message),
        error_messages={**_says(message), "required": "is required"},
    )


class FhirBaseUrl(fields.String):
    """An http(s) base URL, loaded as the normalised ``FhirBase`` it is compared as."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> FhirBase:  # type: ignore[override]
        base = base_of(super()._deserialize(value, attr, data, **kwargs))
        if base is None:
            raise ValidationError("must be an http(s) base URL (no user info, query or fragment)")
        return base


class JsonBoolean(fields.Boolean):
    """``true`` or ``false`` only: marshmallow's Boolean would also take ``1``, ``"yes"`` or ``"on"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ListedServerSchema(Schema):
    """A ``fhirServers`` item written as an object: its URL and what the operator says about it."""

    class Meta:
        unknown = RAISE

    error_messages = {  # noqa: RUF012 - marshmallow reads this class attribute; nothing mutates it
        "unknown": f"is an unknown key (known: {', '.join(_SERVER_KEYS)})",
    }

    url = FhirBaseUrl(required=True, error_messages={"required": "is required"})
    # explicit only: a server that does not check tokens would be open to anyone through the app
    checksTokens = JsonBoolean(
        required=True, error_messages={**_says("must be true or false"), "required": "is required"}
    )


class ListedServer(fields.Field):  # type: ignore[type-arg]
    """A ``fhirServers`` item: a base URL string (``checksTokens`` false), or a ``ListedServerSchema`` object;
    loaded as ``(FhirBase, checks_tokens)``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[FhirBase, bool]:
        if isinstance(value, str):
            base: FhirBase = FhirBaseUrl().deserialize(value)  # type: ignore[assignment]
            return base, False
        if isinstance(value, dict):
            loaded = ListedServerSchema().load(value)
            return loaded["url"], loaded["checksTokens"]
        raise ValidationError("must be an http(s) base URL or an object {url, checksTokens}")


class IntrospectionSchema(Schema):
    """Where and how neckcheck asks the issuer whether an app token is active (RFC 7662 §2)."""

    class Meta:
        unknown = RAISE

    error_messages = {  # noqa: RUF012 - marshmallow reads this class attribute; nothing mutates it
        "type": "expected an object",
        "unknown": f"is an unknown key (known: {', '.join(_INTROSPECTION_KEYS)})",
    }

    endpoint = _required_text("URL")
    clientId = _required_text("string")
    clientSecretFile = _required_text("path")
    authMethod = fields.String(
        load_default=AUTH_METHODS[0],
        validate=validate.OneOf(AUTH_METHODS, error=f"must be one of {', '.join(AUTH_METHODS)}"),
        error_messages=_says(f"must be one of {', '.join(AUTH_METHODS)}"),
    )

    @validates_schema
    def secret_goes_over_tls(self, data: dict[str, Any], **_: Any) -> None:
        """The credentials and every token travel to this endpoint: https, or http to this machine only."""
        base = base_of(data["endpoint"])
        if base is None or (base.scheme != "https" and not is_loopback(base)):
            raise ValidationError("must be an https:// URL (http:// only on a loopback host)", "endpoint")


class TrustedIssuerSchema(Schema):
    class Meta:
        unknown = RAISE

    error_messages = {  # noqa: RUF012 - marshmallow reads this class attribute; nothing mutates it
        "type": "expected an object",
        "unknown": f"is an unknown key (known: {', '.join(sorted(_ENTRY_KEYS))})",
    }

    iss = _required_text("string")
    jwksFile = fields.String(
        allow_none=True,  # null: no jwksFile
        validate=validate.Length(min=1, error="must be a non-empty path"),
        error_messages=_says("must be a non-empty path"),
    )
    # CDS Hooks 2.0.1 §Trusting CDS Clients requires TLS for the jku; the allowlist is where that is enforced.
    jkuAllowlist = fields.List(
        fields.String(validate=validate.Regexp(r"^https://", error="must be an https:// URL")),
        load_default=list,
        error_messages=_says("must be a list of https:// URLs"),
    )
    fhirServers = fields.List(
        ListedServer(),
        load_default=list,
        error_messages=_says("must be a list of http(s) base URLs"),
    )
    introspection = fields.Nested(IntrospectionSchema, error_messages=_says("expected an object"))

    @validates_schema
    def has_keys(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("jwksFile") is None and not data["jkuAllowlist"] and "introspection" not in data:
            raise ValidationError(
                f"issuer {data['iss']!r} needs 'jwksFile' or a non-empty 'jkuAllowlist' (keys for its hook "
                "calls), or 'introspection' (for the clinician app's tokens)"
            )


class TrustedIssuersFileSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    error_messages = {"type": _FILE_SHAPE}  # noqa: RUF012 - read by marshmallow, never mutated

    issuers = fields.List(
        fields.Nested(TrustedIssuerSchema),
        required=True,
        error_messages={**_says(_FILE_SHAPE), "required": _FILE_SHAPE},
    )

    @validates_schema
    def one_entry_per_issuer(self, data: dict[str, Any], **_: Any) -> None:
        seen: set[str] = set()
        for index, entry in enumerate(data["issuers"]):
            if entry["iss"] in seen:
                raise ValidationError({index: [f"duplicate iss {entry['iss']!r}"]}, "issuers")
            seen.add(entry["iss"])


def read_trusted_issuers(document: Any, path: Path) -> list[dict[str, Any]]:
    """The entries of a parsed trusted-issuers file; ``ConfigError`` naming ``path`` and the entry."""
    try:
        loaded: dict[str, Any] = compiled(TrustedIssuersFileSchema).load(document)
    except ValidationError as error:
        (where, message), *_ = flatten(error.messages)
        raise ConfigError(f"{path}: {_describe(where)}{message}") from error
    entries: list[dict[str, Any]] = loaded["issuers"]
    return entries


def _describe(where: tuple[str | int, ...]) -> str:
    """``("issuers", 0, "jkuAllowlist", 1)`` as ``issuers[0]: 'jkuAllowlist'[1] ``: where a message starts."""
    if len(where) < 2:
        return ""
    rest = "".join(f"[{part}]" if isinstance(part, int) else repr(part) for part in where[2:])
    return f"{where[0]}[{where[1]}]: " + (f"{rest} " if rest else "")
