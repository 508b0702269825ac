"""The valid path of a payload without marshmallow: a compiled JSON Schema, then the result built directly.

Issue 10: marshmallow's ``load`` of a small hook request cost about 0.07-0.15 ms per CDS Hooks call, most of
it generic machinery (error stores, hooks, per-field closures) spent on payloads that are almost always
valid. ``fast_load`` answers a valid payload with what ``compiled(schema).load`` returns, from work done once
per process: the published JSON Schema compiled to Python by fastjsonschema, and a builder compiled from the
schema's bound fields. Anything it does not accept goes through ``service.payloads.load`` as before, so a
400 and its messages are marshmallow's.

It may decline what marshmallow accepts (that costs only time), but it never accepts what marshmallow
rejects (tests/payloads/test_fast_path.py checks this property on generated payloads):

- the JSON Schema (generated from the same classes, drift-tested; ``service.payloads.publish``) checks the
  object's shape and the cross-field rules of ``@validates_schema``, which it states (``json_schema_extra``);
- where JSON Schema and marshmallow differ, the builder checks again, as marshmallow does: an integer is an
  ``int`` (JSON Schema also takes ``1.0``), ``null`` only where a field allows none, and each field's
  validators run themselves (marshmallow's ``Regexp`` is ``re.match``, JSON Schema's ``pattern`` a search);
- a schema that uses anything the builder does not mirror (another field class, ``data_key``, a default,
  pre/post-load hooks, ``@validates``, a ``@validates_schema`` with no ``json_schema_extra``) gets no fast
  path at all (``fast_loader`` is ``None``).

The result equals marshmallow's: new dicts and lists where marshmallow makes them, declared fields first in
declaration order, then the unknown (``INCLUDE``) fields; marshmallow adds those in set order, which no
caller can rely on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

import fastjsonschema
from marshmallow import INCLUDE, Schema, ValidationError, fields, missing, validate
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA

from service.packaged import SCHEMAS_DIR
from service.payloads import compiled, load

Build = Callable[[Any], Any]  # a valid value -> what marshmallow loads it as; ValidationError to decline
Loader = Callable[[Any], dict[str, Any] | None]

DECLINED = "not on the fast path"  # the message of a ValidationError raised and caught here, never shown


def fast_load(schema: type[Schema], published: str, payload: Any, what: str) -> dict[str, Any]:
    """``load(schema, payload, what)``, without marshmallow when ``payload`` is plainly valid.

    ``published``: the schema's JSON Schema file under ``schemas/``, as ``service.payloads.publish`` names it.
    """
    fast = fast_loader(schema, published)
    if fast is not None:
        loaded = fast(payload)
        if loaded is not None:
            return loaded
    return load(schema, payload, what)


@cache
def fast_loader(schema: type[Schema], published: str) -> Loader | None:
    """Compiled once per process: the payload as marshmallow loads it, or ``None`` to ask marshmallow."""
    try:
        build = _schema(compiled(schema))
    except NotImplementedError:
        return None
    document = json.loads((SCHEMAS_DIR / published).read_text(encoding="utf-8"))
    # use_default=False: a "default" keyword must never write into the caller's payload
    valid = fastjsonschema.compile(document, use_default=False, use_formats=False)

    def loader(payload: Any) -> dict[str, Any] | None:
        try:
            valid(payload)
            loaded: dict[str, Any] = build(payload)
        except (fastjsonschema.JsonSchemaValueException, ValidationError):
            return None
        return loaded

    return loader


def _schema(schema: Schema) -> Build:
    """An object: its declared fields built in declaration order, then its unknown fields as they are."""
    hooks = type(schema)._hooks
    if hooks[PRE_LOAD] or hooks[POST_LOAD] or hooks[VALIDATES]:
        raise NotImplementedError("load hooks")
    if hooks[VALIDATES_SCHEMA] and not getattr(schema.Meta, "json_schema_extra", None):
        raise NotImplementedError("a @validates_schema rule the published JSON Schema does not state")
    if schema.unknown != INCLUDE or schema.many or schema.partial or schema.dict_class is not dict:
        raise NotImplementedError("load options")
    entries: list[tuple[str, Build, bool]] = []
    for name, field in schema.load_fields.items():
        if "." in name:  # marshmallow would nest the value under the dotted path
            raise NotImplementedError("dotted field name")
        entries.append((name, _field(field), field.required))
    declared = frozenset(name for name, _, _ in entries)

    def build(data: Any) -> dict[str, Any]:
        if type(data) is not dict:
            raise ValidationError(DECLINED)
        out: dict[str, Any] = {}
        for name, member, required in entries:
            if name in data:
                out[name] = member(data[name])
            elif required:
                raise ValidationError(DECLINED)
        for key, value in data.items():
            if key not in declared:
                out[key] = value
        return out

    return build


def _field(field: fields.Field[Any]) -> Build:
    """One field: ``null`` if it allows none, its value as its class loads it, then its validators."""
    if field.data_key is not None or field.attribute is not None or field.load_default is not missing:
        raise NotImplementedError("renamed or defaulted field")
    if field.pre_load or field.post_load:
        raise NotImplementedError("field processors")
    checks = tuple(field.validators)
    if not all(isinstance(check, validate.Validator) for check in checks):
        raise NotImplementedError("a plain function validator")  # may fail by returning False
    allow_none = field.allow_none
    core = _value(field)

    def build(value: Any) -> Any:
        if value is None:
            if allow_none:
                return None
            raise ValidationError(DECLINED)
        out = core(value)
        for check in checks:
            check(out)  # raises ValidationError: marshmallow rejects, or this path declines
        return out

    return build


def _value(field: fields.Field[Any]) -> Build:
    """The class's ``_deserialize`` on the values it takes as they are; any other value is declined."""
    kind = type(field)  # exact classes: a subclass (Email, URL, ...) may load differently
    if kind is fields.Raw:
        return _same
    if kind is fields.String:
        return _typed(str)  # marshmallow also decodes bytes, which JSON never holds
    if kind is fields.Integer:
        return _typed(int)  # exactly int: not bool (marshmallow refuses it) nor 1.0 (JSON Schema takes it)
    if isinstance(field, fields.Nested) and kind is fields.Nested:
        if field.many or field.unknown not in (None, INCLUDE):
            raise NotImplementedError("Nested options")
        return _schema(field.schema)
    if isinstance(field, fields.List) and kind is fields.List:
        return _list(_field(field.inner))
    if isinstance(field, fields.Dict) and kind is fields.Dict:
        keys = None if field.key_field is None else _field(field.key_field)
        values = None if field.value_field is None else _field(field.value_field)
        return _dict(keys, values)
    raise NotImplementedError(f"field class {kind.__name__}")


def _same(value: Any) -> Any:
    return value


def _typed(kind: type) -> Build:
    def build(value: Any) -> Any:
        if type(value) is not kind:
            raise ValidationError(DECLINED)
        return value

    return build


def _list(item: Build) -> Build:
    def build(value: Any) -> list[Any]:
        if type(value) is not list:
            raise ValidationError(DECLINED)
        return [item(each) for each in value]

    return build


def _dict(keys: Build | None, values: Build | None) -> Build:
    """marshmallow's Dict: a shallow copy, or each key and value loaded by its field."""

    def build(value: Any) -> dict[Any, Any]:
        if type(value) is not dict:
            raise ValidationError(DECLINED)
        if keys is None and values is None:
            return dict(value)
        return {
            (k if keys is None else keys(k)): (v if values is None else values(v)) for k, v in value.items()
        }

    return build
