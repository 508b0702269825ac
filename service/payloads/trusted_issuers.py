"""The trusted-issuers file (NECKCHECK_TRUSTED_ISSUERS_FILE): which EHRs may call, and what they may send.

``{"issuers": [{"iss", "jwksFile", "jkuAllowlist", "fhirServers"}]}``. An entry with a key we do not know is
refused (a misspelt ``jwksfile`` must not silently leave an issuer without keys); other top-level keys
(a ``$comment``, say) are ignored. Every fault is a ``ConfigError`` naming the file and the entry, so the
service refuses to start rather than rejecting every request later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from service.errors import ConfigError
from service.payloads import compiled, flatten
from service.security.fhir_servers import FhirBase, base_of

_ENTRY_KEYS = ("iss", "jwksFile", "jkuAllowlist", "fhirServers")
_FILE_SHAPE = "expected an object with an 'issuers' list"


def _says(text: str) -> dict[str, str | list[Any] | dict[Any, Any]]:
    """The same message for a wrong type and for null."""
    return {"invalid": text, "null": text}


class FhirBaseUrl(fields.String):
    """An http(s) base URL, loaded as the normalised ``FhirBase`` it is compared as."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> FhirBase:  # type: ignore[override]
        base = base_of(super()._deserialize(value, attr, data, **kwargs))
        if base is None:
            raise ValidationError("must be an http(s) base URL (no user info, query or fragment)")
        return base


class TrustedIssuerSchema(Schema):
    class Meta:
        unknown = RAISE

    error_messages = {  # noqa: RUF012 - marshmallow reads this class attribute; nothing mutates it
        "type": "expected an object",
        "unknown": f"is an unknown key (known: {', '.join(sorted(_ENTRY_KEYS))})",
    }

    iss = fields.String(
        required=True,
        validate=validate.Length(min=1, error="must be a non-empty string"),
        error_messages={**_says("must be a non-empty string"), "required": "is required"},
    )
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
        FhirBaseUrl(),
        load_default=list,
        error_messages=_says("must be a list of http(s) base URLs"),
    )

    @validates_schema
    def has_keys(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("jwksFile") is None and not data["jkuAllowlist"]:
            raise ValidationError(f"issuer {data['iss']!r} needs 'jwksFile' or a non-empty 'jkuAllowlist'")


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
