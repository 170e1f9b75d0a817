#!/usr/bin/env bash
# FineGrain vs verl 0.9.1 on CPU, end to end.
#
#   Benchmarks/run_peer_comparison.sh [--venv DIR] [--out DIR] [--skip-setup] [--skip-build] [BENCH ARGS...]
#
# BENCH ARGS (e.g. --responses 512 --max-length 4096 --group 8 --repeats 5) are passed unchanged to
# both `finegrain bench --json` and Benchmarks/verl_peer.py, so the two sides measure the same batch
# shape. Steps:
#   1. Benchmarks/setup_peer.sh DIR          (peer venv; skipped quickly when already set up)
#   2. swift build -c release
#   3. .build/release/finegrain bench --json BENCH ARGS   > OUT/finegrain.jsonl
#   4. DIR/bin/python Benchmarks/verl_peer.py BENCH ARGS > OUT/verl.jsonl
#   5. python3 Benchmarks/compare.py OUT/finegrain.jsonl OUT/verl.jsonl  (also saved to OUT/comparison.md)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="$ROOT/.venv-peer"
OUT="$ROOT/bench-out"
SKIP_SETUP=0
SKIP_BUILD=0
BENCH_ARGS=()

while [ $# -gt 0 ]; do
    case "$1" in
        --venv) VENV="$2"; shift 2 ;;
        --venv=*) VENV="${1#*=}"; shift ;;
        --out) OUT="$2"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --skip-setup) SKIP_SETUP=1; shift ;;
        --skip-build) SKIP_BUILD=1; shift ;;
        -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) BENCH_ARGS+=("$1"); shift ;;
    esac
done

log() { printf 'run_peer_comparison: %s\n' "$*" >&2; }
mkdir -p "$OUT"
cd "$ROOT"

if [ "$SKIP_SETUP" -eq 0 ]; then
    log "setting up the peer venv in $VENV"
    bash "$HERE/setup_peer.sh" "$VENV"
fi

if [ "$SKIP_BUILD" -eq 0 ]; then
    log "swift build -c release"
    swift build -c release
fi

log "FineGrain: .build/release/finegrain bench --json ${BENCH_ARGS[*]:-}"
.build/release/finegrain bench --json "${BENCH_ARGS[@]}" > "$OUT/finegrain.jsonl"

log "verl: verl_peer.py ${BENCH_ARGS[*]:-}"
"$VENV/bin/python" "$HERE/verl_peer.py" "${BENCH_ARGS[@]}" > "$OUT/verl.jsonl"

python3 "$HERE/compare.py" "$OUT/finegrain.jsonl" "$OUT/verl.jsonl" | tee "$OUT/comparison.md"
