#!/bin/sh
# CycloneDX JSON SBOM of neckcheck's runtime environment (`make sbom`; docs/operations/deploy.md, deploy/README.md).
#   sh deploy/sbom.sh <dev venv bin dir> <output file>
# The runtime environment is what the image holds besides neckcheck itself: requirements.lock, installed
# with --require-hashes as the Dockerfile does, into a throwaway venv without pip, so that it holds those
# packages and nothing else. cyclonedx-py (from the dev venv) then describes that venv, with neckcheck
# (pyproject.toml) as the root component. --output-reproducible: no serial number or timestamp, so the
# same lock gives the same bytes (set SOURCE_DATE_EPOCH to record a timestamp).
set -eu
cd "$(dirname "$0")/.."
bin=$1
out=$2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/neckcheck-sbom.XXXXXX")
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

"$bin/python" -m venv --without-pip "$tmp/runtime"
"$bin/pip" --python "$tmp/runtime/bin/python" install --quiet --no-compile --require-hashes \
    -r requirements.lock
"$bin/cyclonedx-py" environment --of JSON --output-reproducible --pyproject pyproject.toml \
    -o "$out" "$tmp/runtime/bin/python"
echo "sbom: $out"
