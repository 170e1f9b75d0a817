#!/usr/bin/env bash
# Install and run the Python package's tests against the real `finegrain serve` binary.
#
#   python/run_tests.sh [VENV]        (default VENV: <repo>/.venv-ci)
#
# 1. creates / completes VENV with Benchmarks/setup_peer.sh (verl 0.9.1 + CPU torch; idempotent),
# 2. installs the pinned test lock python/requirements-test.txt and the package (both --no-deps),
# 3. runs `python -m pytest python/tests` with FINEGRAIN_BIN (default <repo>/.build/debug/finegrain;
#    build it first with `swift build`).
# Exit status: pytest's, except that "no tests collected" (pytest's 5) is turned into 1.
# Extra arguments after VENV are passed to pytest (e.g. `-k verl -x`).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="${1:-$ROOT/.venv-ci}"
shift || true
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac

log() { printf 'python/run_tests: %s\n' "$*" >&2; }

bash "$ROOT/Benchmarks/setup_peer.sh" "$VENV"
PY="$VENV/bin/python"

log "installing test requirements and ./python into $VENV"
"$PY" -m pip install --disable-pip-version-check -q --no-deps -r "$HERE/requirements-test.txt"
# setuptools is in the peer lock: build without an isolated (downloading) build environment when possible.
BUILD_ISOLATION=()
if "$PY" -c 'import setuptools' >/dev/null 2>&1; then BUILD_ISOLATION=(--no-build-isolation); fi
"$PY" -m pip install --disable-pip-version-check -q --no-deps "${BUILD_ISOLATION[@]}" --force-reinstall "$HERE"

export FINEGRAIN_BIN="${FINEGRAIN_BIN:-$ROOT/.build/debug/finegrain}"
if [ ! -x "$FINEGRAIN_BIN" ]; then
    log "error: $FINEGRAIN_BIN is not an executable; run 'swift build' first or set FINEGRAIN_BIN"
    exit 1
fi
log "running pytest against $FINEGRAIN_BIN"
# Tests start their own servers; a token in the environment must not leak into them.
unset FINEGRAIN_TOKEN FINEGRAIN_URL FINEGRAIN_PARAMS || true
cd "$ROOT"
set +e
"$PY" -m pytest python/tests -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    log "error: pytest collected no tests"
    exit 1
fi
exit "$rc"
