#!/usr/bin/env bash
# Create the Python peer virtualenv (verl 0.9.1 + CPU torch) for Benchmarks/verl_peer.py.
#
#   Benchmarks/setup_peer.sh [VENV_DIR]      (default: <repo root>/.venv-peer)
#
# Installs the pinned lock Benchmarks/requirements-peer.txt with --no-deps (see the comments in that
# file). Idempotent: if VENV_DIR already imports verl.trainer.ppo.core_algos with the pinned torch
# and verl versions, it does nothing.
#
# Environment:
#   PYTHON            interpreter used to create the venv (default: python3)
#   PEER_FIND_LINKS   folder or URL holding the CPU torch wheel; passed to pip as --find-links
#                     (default: /opt/wheels when it exists; pip's own config is honoured as well)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="${1:-$ROOT/.venv-peer}"
PYTHON="${PYTHON:-python3}"
REQ="$HERE/requirements-peer.txt"

TORCH_VERSION="$(sed -n 's/^torch==\([^ #]*\).*/\1/p' "$REQ")"
VERL_VERSION="$(sed -n 's/^verl==\([^ #]*\).*/\1/p' "$REQ")"

log() { printf 'setup_peer: %s\n' "$*" >&2; }

peer_ok() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - "$TORCH_VERSION" "$VERL_VERSION" >/dev/null 2>&1 <<'PY'
import sys
import torch
import verl
import verl.trainer.ppo.core_algos  # noqa: F401
assert torch.__version__ == sys.argv[1], torch.__version__
assert verl.__version__ == sys.argv[2], verl.__version__
PY
}

if peer_ok; then
    log "$VENV already has torch $TORCH_VERSION and verl $VERL_VERSION; nothing to do"
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || { log "error: $PYTHON not found"; exit 1; }

make_venv() { "$PYTHON" -m venv "$VENV"; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV with $("$PYTHON" --version 2>&1)"
    if ! make_venv 2>/dev/null; then
        # Debian/Ubuntu ship venv/ensurepip separately.
        log "python3 -m venv failed; installing python3-venv with apt-get"
        rm -rf "$VENV"
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
        $SUDO apt-get update
        pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y python3-venv \
            || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "python${pyver}-venv"
        make_venv
    fi
fi

PIP=("$VENV/bin/python" -m pip)
FIND_LINKS=()
if [ -n "${PEER_FIND_LINKS:-}" ]; then
    FIND_LINKS=(--find-links "$PEER_FIND_LINKS")
elif [ -d /opt/wheels ]; then
    FIND_LINKS=(--find-links /opt/wheels)
fi

log "installing $(grep -c '^[A-Za-z]' "$REQ") pinned packages from $REQ (--no-deps)"
start=$(date +%s)
if ! "${PIP[@]}" install --disable-pip-version-check --no-deps "${FIND_LINKS[@]}" -r "$REQ"; then
    log "error: pip install failed."
    log "torch==$TORCH_VERSION is a CPU-only build that PyPI does not host: point PEER_FIND_LINKS at a"
    log "folder (or index page) that holds its wheel, e.g. the PyTorch CPU wheel index."
    exit 1
fi
log "pip install took $(( $(date +%s) - start ))s"

if ! peer_ok; then
    log "error: $VENV still cannot import verl.trainer.ppo.core_algos with torch $TORCH_VERSION / verl $VERL_VERSION:"
    "$VENV/bin/python" -c 'import torch, verl, verl.trainer.ppo.core_algos; print(torch.__version__, verl.__version__)' || true
    exit 1
fi
log "ready: $VENV (torch $TORCH_VERSION, verl $VERL_VERSION)"
