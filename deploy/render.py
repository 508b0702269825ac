"""Render a kustomization without kubectl: ``python deploy/render.py DIR > rendered.yaml``.

Only what deploy/kubernetes uses is supported, and anything else is refused rather than ignored:
``resources`` (files or directories with their own kustomization.yaml), ``patches`` (inline JSON 6902
ops ``add``/``replace``/``remove`` with a ``target`` of kind + name matching exactly one resource) and
``images`` (``newName``/``newTag`` for containers whose image is ``name``). Standard library + PyYAML.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "patches", "images"}
OPS = {"add", "replace", "remove"}


class RenderError(Exception):
    pass


def render(directory: Path) -> list[dict[str, Any]]:
    kfile = directory / "kustomization.yaml"
    spec = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise RenderError(f"{kfile}: unsupported fields {sorted(unknown)} (supported: {sorted(SUPPORTED)})")
    docs: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        if path.is_dir():
            docs.extend(render(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    for number, patch in enumerate(spec.get("patches", []), 1):
        where = f"{kfile}: patch {number}"
        if set(patch) != {"target", "patch"} or set(patch["target"]) != {"kind", "name"}:
            raise RenderError(f"{where}: only an inline patch with a kind/name target is supported")
        target = patch["target"]
        matches = [d for d in docs if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]]
        if len(matches) != 1:
            raise RenderError(f"{where}: target {target} matches {len(matches)} resources, not 1")
        for op in yaml.safe_load(patch["patch"]):
            _apply(matches[0], op, where)
    for image in spec.get("images", []):
        _set_image(docs, image)
    return docs


def _apply(doc: dict[str, Any], op: dict[str, Any], where: str) -> None:
    if op.get("op") not in OPS:
        raise RenderError(f"{where}: unsupported op {op.get('op')!r} (supported: {sorted(OPS)})")
    keys = [k.replace("~1", "/").replace("~0", "~") for k in op["path"].split("/")[1:]]
    parent: Any = doc
    for key in keys[:-1]:
        try:
            parent = parent[int(key)] if isinstance(parent, list) else parent[key]
        except (KeyError, IndexError, ValueError):
            raise RenderError(f"{where}: {op['path']}: no {key!r} in the target") from None
    last = keys[-1]
    if isinstance(parent, list):
        if op["op"] == "add" and last == "-":
            parent.append(op["value"])
            return
        index = int(last)
        if not 0 <= index < len(parent) + (op["op"] == "add"):
            raise RenderError(f"{where}: {op['path']}: index out of range")
        if op["op"] == "add":
            parent.insert(index, op["value"])
        elif op["op"] == "replace":
            parent[index] = op["value"]
        else:
            del parent[index]
        return
    if not isinstance(parent, dict):
        raise RenderError(f"{where}: {op['path']}: parent is not an object or a list")
    if op["op"] != "add" and last not in parent:
        raise RenderError(f"{where}: {op['path']}: nothing to {op['op']}")
    if op["op"] == "remove":
        del parent[last]
    else:
        parent[last] = op["value"]


def _set_image(docs: list[dict[str, Any]], image: dict[str, str]) -> None:
    found = False
    for doc in docs:
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            ref = container["image"]
            name = ref.split("@")[0].rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
            if name != image["name"]:
                continue
            found = True
            tag = image.get("newTag") or (ref[len(name) + 1 :] if ref != name else "")
            new = image.get("newName", name)
            container["image"] = f"{new}:{tag}" if tag else new
    if not found:
        raise RenderError(f"images: no container uses image {image['name']!r}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: render.py KUSTOMIZATION_DIR", file=sys.stderr)
        return 2
    try:
        docs = render(Path(argv[0]))
    except (RenderError, OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 1
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False, explicit_start=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
