#!/bin/sh
# Offline checks of what hospital IT deploys (filled in by the deployment work; see README "Deploy").
set -eu
cd "$(dirname "$0")/.."
hadolint Dockerfile
