"""What the container runs, checked outside a container: the Dockerfile, the gunicorn config it loads,
and the settings the Kubernetes manifests and the compose file pass in."""

from __future__ import annotations

import fnmatch
import gc
import importlib.util
import json
import os
import re
import runpy
import shlex
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from service.config import PREFIX, SERVER_VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "kubernetes" / "base"
OVERLAY = DEPLOY / "kubernetes" / "overlays" / "postgresql"
GUNICORN_CONF = ROOT / "service" / "gunicorn.conf.py"
CMD = ["neckcheck", "serve"]

# Set in the manifests, but names of files that exist only inside the pod.
POD_ONLY_PATHS = frozenset({"NECKCHECK_TRUSTED_ISSUERS_FILE"})


# ---- the Dockerfile ----


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per stage, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    stages: list[list[tuple[str, str]]] = [[]]
    for line in lines:
        instruction, _, args = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), args.strip()))
    return stages[1:]


def final(instruction: str) -> list[str]:
    return [args for name, args in dockerfile_stages()[-1] if name == instruction]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in final("ENV"):
        for word in shlex.split(args):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def test_multi_stage_build_on_python_311_slim() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG PYTHON_IMAGE=python:3.11." in text and "-slim" in text
    assert stages[0][0] == ("FROM", "${PYTHON_IMAGE} AS builder")
    assert stages[-1][0][1].startswith("${PYTHON_IMAGE}")
    assert any(n == "RUN" and "pip wheel" in a and "--no-deps /wheels/neckcheck-" in a for n, a in stages[0])
    assert any(n == "COPY" and a.startswith("--from=builder /opt/venv") for n, a in stages[-1])


def test_cmd_is_neckcheck_serve() -> None:
    assert [json.loads(args) for args in final("CMD")][-1] == CMD
    assert final("WORKDIR")[-1] == "/var/lib/neckcheck"  # the volume: a relative SQLite path lands there


def test_serve_runs_gunicorn_with_the_packaged_config_and_the_factory() -> None:
    from service import app
    from service.serve import command

    argv = command(None, None)
    assert argv[1:5] == ["-m", "gunicorn", "--config", str(GUNICORN_CONF)]
    module, _, call = argv[-1].partition(":")
    assert module == "service.app" and call == "create_app()"
    assert callable(app.create_app)


def test_runs_as_non_root_and_exposes_8080() -> None:
    user = final("USER")[-1].split(":")[0]
    assert user not in ("0", "root") and int(user) == 10001
    assert final("EXPOSE") == ["8080"]
    env = image_env()
    assert env["NECKCHECK_BIND"] == "0.0.0.0:8080"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"
    assert "PYTHONPATH" not in env  # the installed wheel, not a source tree


def test_healthcheck_probes_healthz_on_8080() -> None:
    (check,) = final("HEALTHCHECK")
    assert "/healthz" in check and "127.0.0.1:8080" in check
    assert "curl" not in check and "urllib" in check


def test_final_image_copies_only_the_venv() -> None:
    """No second copy of the sources: the package and its data come in the venv, from the wheel."""
    assert final("COPY") == ["--from=builder /opt/venv /opt/venv"]


def test_sqlite_default_lives_on_a_volume() -> None:
    url = image_env()["NECKCHECK_DATABASE_URL"]
    assert url == "sqlite:////var/lib/neckcheck/neckcheck.db"
    assert final("VOLUME") == ['["/var/lib/neckcheck"]']


def dockerignored(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    ignored = False
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for candidate in prefixes:
            if fnmatch.fnmatch(candidate, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(candidate.split("/")[-1], pattern[3:])
            ):
                ignored = not negate
                break
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "requirements.lock",
        "README.md",
        "openapi.yaml",
        "service/app.py",
        "service/gunicorn.conf.py",
        "schemas/codes.json",
        "service/app_ui/static/app.js",
        "tests/fixtures/scenarios/S5-observations.json",  # the demo's samples
    ],
)
def test_build_context_keeps_what_the_image_copies(path: str) -> None:
    assert (ROOT / path).exists()
    assert not dockerignored(path)


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        "tests/fixtures/scenarios/S5-questionnaire.json",
        "tests/fixtures/scenarios/build.py",
        "benchmarks/run.py",
        "deploy/compose.yaml",
        "neckcheck.db",
        ".env",
        "service/__pycache__/app.cpython-311.pyc",
        ".mypy_cache/x",
    ],
)
def test_build_context_leaves_out_the_rest(path: str) -> None:
    assert dockerignored(path)


# ---- the gunicorn config the CMD loads ----


def load_gunicorn_conf() -> dict[str, Any]:
    """Run the config file as gunicorn does, then undo what it does to this process's environment."""
    saved = dict(os.environ)
    try:
        return runpy.run_path(str(GUNICORN_CONF))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_gunicorn_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "NECKCHECK_BIND": "0.0.0.0:8080",
        "NECKCHECK_WORKERS": "3",
        "NECKCHECK_THREADS": "5",
        "NECKCHECK_TIMEOUT": "41",
        "NECKCHECK_GRACEFUL_TIMEOUT": "17",
        "NECKCHECK_MAX_REQUESTS": "1234",
        "NECKCHECK_MAX_REQUESTS_JITTER": "56",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    conf = load_gunicorn_conf()
    assert conf["bind"] == "0.0.0.0:8080"
    assert (conf["workers"], conf["threads"]) == (3, 5)
    assert (conf["timeout"], conf["graceful_timeout"]) == (41, 17)
    assert (conf["max_requests"], conf["max_requests_jitter"]) == (1234, 56)
    assert conf["errorlog"] == "-"  # logs to stderr, not to a file (the root filesystem is read-only)


def test_gunicorn_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in SERVER_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    conf = load_gunicorn_conf()
    assert conf["bind"] == "127.0.0.1:8080"
    assert conf["graceful_timeout"] < conf["timeout"]


def test_gunicorn_reads_the_configmap_values(monkeypatch: pytest.MonkeyPatch) -> None:
    data = configmap()
    for key in SERVER_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    conf = load_gunicorn_conf()
    assert conf["bind"] == "0.0.0.0:8080"
    assert conf["workers"] == int(data["NECKCHECK_WORKERS"])
    assert conf["graceful_timeout"] == int(data["NECKCHECK_GRACEFUL_TIMEOUT"])


# ---- the settings the manifests and the compose file pass in ----


def load_render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("neckcheck_deploy_render", DEPLOY / "render.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rendered(directory: Path) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in load_render().render(directory)}


def configmap() -> dict[str, str]:
    data: dict[str, str] = yaml.safe_load((BASE / "configmap.yaml").read_text(encoding="utf-8"))["data"]
    return data


def compose_env() -> dict[str, str]:
    spec = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    env: dict[str, str] = spec["services"]["neckcheck"]["environment"]
    return env


def secret_example_env() -> dict[str, str]:
    docs = yaml.safe_load_all((BASE / "secret.example.yaml").read_text(encoding="utf-8"))
    return {k: v for d in docs for k, v in d["stringData"].items() if k.startswith(PREFIX)}


def container(kind_docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (c,) = kind_docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


def all_env_names() -> dict[str, set[str]]:
    sources = {
        "configmap.yaml": set(configmap()),
        "compose.yaml": set(compose_env()),
        "secret.example.yaml": set(secret_example_env()),
        "Dockerfile": set(image_env()),
    }
    for name, directory in (("base", BASE), ("overlay", OVERLAY)):
        docs = rendered(directory)
        sources[f"{name} Deployment env"] = {e["name"] for e in container(docs).get("env", [])}
        sources[f"{name} ConfigMap"] = set(docs["ConfigMap"]["data"])
    return sources


KNOWN = {PREFIX + f.name.upper() for f in fields(Settings)} | SERVER_VARIABLES


@pytest.mark.parametrize("source", sorted(all_env_names()))
def test_every_neckcheck_variable_is_a_real_setting(source: str) -> None:
    names = {n for n in all_env_names()[source] if n.startswith(PREFIX)}
    assert names <= KNOWN, f"{source}: not settings: {sorted(names - KNOWN)}"


def test_every_setting_is_documented_in_a_table() -> None:
    """The operations guide's tables (docs/operations: Configuration, Deploy): one row names each variable,
    and names only real ones."""
    rows = [
        line.split("|")[1]
        for page in sorted((ROOT / "docs" / "operations").glob("*.md"))
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith("| `" + PREFIX)
    ]
    documented = set(re.findall(r"`(" + PREFIX + r"[A-Z_]+)`", " ".join(rows)))
    assert not KNOWN - documented, f"settings missing from the docs' tables: {sorted(KNOWN - documented)}"
    assert not documented - KNOWN, f"docs' rows for no setting: {sorted(documented - KNOWN)}"


@pytest.mark.parametrize("source", ["configmap", "compose"])
def test_setting_values_are_accepted(source: str) -> None:
    env = configmap() if source == "configmap" else compose_env()
    app_values = {k: v for k, v in env.items() if k not in SERVER_VARIABLES | POD_ONLY_PATHS}
    Settings.from_mapping(app_values)  # raises ConfigError naming the variable


def test_kubernetes_requires_postgresql_and_never_insecure_dev() -> None:
    assert configmap()["NECKCHECK_INSECURE_DEV"] == "0"
    assert "NECKCHECK_DATABASE_URL" not in configmap()  # it is in the Secret
    assert secret_example_env()["NECKCHECK_DATABASE_URL"].startswith("postgresql+psycopg://")
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "secret.example.yaml" not in kustomization["resources"]
    refs = container(rendered(BASE))["envFrom"]
    assert {"secretRef": {"name": "neckcheck-secrets"}} in refs


def test_the_demo_is_on_under_make_run_only() -> None:
    """NECKCHECK_APP_DEMO: off in the image, compose and both Kubernetes renderings; on under `make run`."""
    assert image_env()["NECKCHECK_APP_DEMO"] == "0"
    assert compose_env()["NECKCHECK_APP_DEMO"] == "0"
    for directory in (BASE, OVERLAY):
        assert rendered(directory)["ConfigMap"]["data"]["NECKCHECK_APP_DEMO"] == "0"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (run,) = [line for line in makefile.splitlines() if line.strip().endswith("neckcheck serve")]
    assert "NECKCHECK_APP_DEMO=1" in run.split()


def test_overlay_patches_replicas_migration_and_database_url() -> None:
    docs = rendered(OVERLAY)
    assert docs["Deployment"]["spec"]["replicas"] == 3
    assert docs["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 3
    assert docs["ConfigMap"]["data"]["NECKCHECK_AUTO_MIGRATE"] == "1"
    env = {e["name"]: e for e in container(docs)["env"]}
    ref = env["NECKCHECK_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "neckcheck-secrets", "key": "NECKCHECK_DATABASE_URL"}
    assert rendered(BASE)["Deployment"]["spec"]["replicas"] == 2  # the base is left as it was


def test_deployment_runs_the_image_command_hardened() -> None:
    docs = rendered(BASE)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    c = container(docs)
    assert c["args"] == CMD
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] == 10001 == pod["securityContext"]["runAsUser"]
    assert sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(c["resources"]) == {"requests", "limits"}
    writable = {m["mountPath"]: m["name"] for m in c["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp": "tmp", configmap()["NECKCHECK_SPOOL_DIR"]: "spool"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"] and "emptyDir" in volumes["spool"]


def test_readiness_turns_503_before_the_spool_volume_is_full() -> None:
    """Past its sizeLimit an emptyDir gets the pod evicted: the spool bound must come well before."""
    pod = rendered(BASE)["Deployment"]["spec"]["template"]["spec"]
    limit = {v["name"]: v for v in pod["volumes"]}["spool"]["emptyDir"]["sizeLimit"]
    units = {"Mi": 2**20, "Gi": 2**30}
    size_limit = int(limit[:-2]) * units[limit[-2:]]
    assert int(configmap()["NECKCHECK_SPOOL_MAX_BYTES"]) <= size_limit // 2


def test_shutdown_fits_in_the_grace_period() -> None:
    pod = rendered(BASE)["Deployment"]["spec"]["template"]["spec"]
    command = container(rendered(BASE))["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    graceful = int(configmap()["NECKCHECK_GRACEFUL_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > int(command[1]) + graceful


def test_network_policy_and_autoscaling() -> None:
    docs = rendered(BASE)
    policy = docs["NetworkPolicy"]["spec"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [8080]
    assert {p["port"] for rule in policy["egress"] for p in rule["ports"]} == {53, 5432, 443}
    metric = docs["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["resource"]
    assert metric["name"] == "cpu" and metric["target"]["averageUtilization"] == 70
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 1


def test_migration_job_runs_the_cli_with_the_deployed_image() -> None:
    job = yaml.safe_load((BASE / "db-upgrade.job.yaml").read_text(encoding="utf-8"))
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["neckcheck", "db", "upgrade"]
    assert c["image"] == container(rendered(BASE))["image"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "db-upgrade.job.yaml" not in kustomization["resources"]


def test_the_master_freezes_what_it_loaded_before_each_fork() -> None:
    """gc.freeze() in pre_fork: a worker's full collection skips the loaded app (no pause of tens of ms)."""
    conf = load_gunicorn_conf()
    before = gc.get_freeze_count()
    try:
        conf["pre_fork"](None, None)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
