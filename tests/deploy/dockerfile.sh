#!/usr/bin/env bash
# Lints the Dockerfile with hadolint (installed by scripts/install-deps.sh
# under ~/.cache/outbox-relay/tools). Exits 77 (skipped) without hadolint.
#
#   usage: tests/deploy/dockerfile.sh SOURCE_DIR
set -euo pipefail

src="$1"
tools="${OUTBOX_CACHE:-$HOME/.cache/outbox-relay}/tools"
PATH="$tools/venv/bin:$tools/bin:$PATH"
if ! command -v hadolint >/dev/null; then
  echo "hadolint not installed: skipped"
  exit 77
fi
cd "$src"
hadolint --config .hadolint.yaml Dockerfile
echo "hadolint: clean"
