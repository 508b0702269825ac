"""Pinned npm tarballs, fetched from the registry a machine is set up to use, read the way npm reads it.
Used by the clinician app's browser library (``make vendor``) and the CQL tools (``make cql``).

A hospital's build machine often cannot reach registry.npmjs.org and is given a mirror instead (Artifactory,
Nexus, Verdaccio) through npm's own settings. Fetching a pinned tarball from anywhere else would fail there,
or worse, leak a request out of the network, so the same settings are honoured, in npm's order of
precedence (docs.npmjs.com, "npmrc" and "config"): the ``npm_config_registry`` environment variable (any
case), then ``registry=`` in the project's ``.npmrc``, the user's (``~/.npmrc``, or
``npm_config_userconfig``) and the global one (``npm_config_globalconfig``). ``${NAME}`` in a value is
replaced from the environment, as npm does. A ``//host/path/:_authToken`` line for the chosen registry is
sent as a bearer token. The integrity pin is checked whatever the registry, so a mirror cannot change a
byte of what is used.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Registry:
    url: str  # without a trailing slash
    token: str | None = None  # the .npmrc ``_authToken`` for this registry, if any

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def registry(environ: Mapping[str, str] | None = None, project: Path | None = None) -> Registry:
    """The registry npm would use in ``project`` (default: the working directory) with ``environ``."""
    env = os.environ if environ is None else environ
    settings = _settings(env, project or Path.cwd())
    url = (_env(env, "registry") or settings.get("registry") or DEFAULT).rstrip("/")
    return Registry(url, settings.get(f"{_nerf_dart(url)}:_authToken"))


def _settings(env: Mapping[str, str], project: Path) -> dict[str, str]:
    """Every key of the .npmrc files, the nearer file winning (project, user, global)."""
    home = Path(env.get("HOME") or Path.home())
    files = [
        project / ".npmrc",
        Path(_env(env, "userconfig") or home / ".npmrc"),
        Path(_env(env, "globalconfig") or "/etc/npmrc"),
    ]
    found: dict[str, str] = {}
    for path in reversed(files):
        found.update(_read(path, env))
    return found


def _read(path: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``key = value`` lines; ``;`` and ``#`` start comments; quotes around a value are dropped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in ";#" or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        found[key] = re.sub(r"\$\{([^}]+)\}", lambda m: env.get(m.group(1), ""), value)
    return found


def _env(env: Mapping[str, str], name: str) -> str | None:
    """npm reads ``npm_config_<name>`` whatever its case."""
    wanted = f"npm_config_{name}"
    return next((value for key, value in env.items() if key.lower() == wanted and value), None)


def _nerf_dart(url: str) -> str:
    """npm's key for per-registry credentials: the URL without its scheme, ending in a slash."""
    return "//" + re.sub(r"^[a-z]+://", "", url).rstrip("/") + "/"


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def tarball(name: str, version: str, integrity: str, source: Registry | None = None) -> bytes:
    """The package's tarball as the registry serves it, refused unless its sha512 matches the pin."""
    source = source or registry()
    url = f"{source.url}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
    request = urllib.request.Request(url, headers=source.headers())
    with urllib.request.urlopen(request, timeout=120) as response:
        data: bytes = response.read()
    found = integrity_of(data)
    if found != integrity:
        raise RuntimeError(
            f"{name}@{version} from {source.url}: integrity {found} is not the pinned {integrity}"
        )
    return data
