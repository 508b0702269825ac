#!/bin/sh
# Offline checks of what hospital IT deploys (docs/operations/deploy.md). POSIX sh; needs hadolint, yamllint,
# kubernetes-validate and python (with PyYAML) on PATH - `make deploy-check` puts .venv/bin first.
# No container engine, no kubectl, no network.
set -eu
cd "$(dirname "$0")/.."

# Kubernetes versions to validate the rendered manifests against (schemas bundled with
# kubernetes-validate): the oldest release we support and the newest the package knows.
K8S_VERSIONS="${K8S_VERSIONS:-1.31.0 1.37.0}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/neckcheck-deploy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

echo "== hadolint Dockerfile"
hadolint Dockerfile

echo "== yamllint deploy/"
yamllint --strict -c .yamllint.yaml .yamllint.yaml deploy/

echo "== render kustomizations (deploy/render.py)"
python deploy/render.py deploy/kubernetes/base >"$tmp/base.yaml"
python deploy/render.py deploy/kubernetes/overlays/postgresql >"$tmp/overlay-postgresql.yaml"

versions=""
for v in $K8S_VERSIONS; do versions="$versions -k $v"; done
echo "== kubernetes-validate --strict$versions"
# shellcheck disable=SC2086  # $versions is a list of options
kubernetes-validate --strict --quiet $versions \
    "$tmp/base.yaml" "$tmp/overlay-postgresql.yaml" \
    deploy/kubernetes/base/secret.example.yaml deploy/kubernetes/base/db-upgrade.job.yaml

echo "== compose.yaml structure (deploy/check_compose.py)"
python deploy/check_compose.py deploy/compose.yaml

echo "deploy-check: OK"
