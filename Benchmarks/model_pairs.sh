#!/bin/sh
# FineGrain's model benchmark and its PyTorch peer, back to back, ROUNDS times (default 3), on the same
# shape (default the benchmark's 16 x 64; pass e.g. "64 54" for the RL update's 8 prompts x 8 samples).
# Prints one line per round with both sides' tokens/s, their ratio and the 1-minute load average, so a
# shared machine's noise shows up next to the numbers instead of inside them.
#
#   Benchmarks/model_pairs.sh [BATCH LENGTH [ROUNDS]]
# Needs a release build (swift build -c release; FINEGRAIN=path overrides the binary) and the peer venv
# (Benchmarks/setup_peer.sh; PEER_PY=path overrides the interpreter).
set -eu
cd "$(dirname "$0")/.."
B=${1:-16}; T=${2:-64}; ROUNDS=${3:-3}
FG=${FINEGRAIN:-.build/release/finegrain}
PY=${PEER_PY:-.venv-peer/bin/python}
ROUNDS_LOG=$(mktemp)
trap 'rm -f "$ROUNDS_LOG"' EXIT
i=1
while [ "$i" -le "$ROUNDS" ]; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    fg=$("$FG" bench --model --json --repeats ${REPEATS:-20} --model-batch "$B" --model-length "$T")
    pt=$("$PY" Benchmarks/torch_model_peer.py --batch "$B" --length "$T" --repeats ${REPEATS:-20})
    FG_OUT="$fg" PT_OUT="$pt" LOAD="$load" ROUND="$i" LOG="$ROUNDS_LOG" python3 - <<'PY'
import json, os
fg = [json.loads(l) for l in os.environ["FG_OUT"].splitlines() if l.strip()]
by = {o["name"]: o for o in fg}
pt = json.loads(os.environ["PT_OUT"])
fb, sm = by["model_fwd_bwd"]["tokens_per_s"], by["model_sample"]["tokens_per_s"]
eff = [o["efficiency"] for o in fg if o["name"].startswith("matmul/")]
print(f"round {os.environ['ROUND']} (load {os.environ['LOAD']}): fwd+bwd FineGrain {fb/1e3:.1f}k PyTorch "
      f"{pt['fwd_bwd_tokens_per_s']/1e3:.1f}k = {fb/pt['fwd_bwd_tokens_per_s']:.2f}x | sampling {sm/1e3:.1f}k vs "
      f"{pt['sample_tokens_per_s']/1e3:.1f}k = {sm/pt['sample_tokens_per_s']:.1f}x | matmul efficiency "
      + "/".join(f"{100*e:.0f}%" for e in eff))
with open(os.environ["LOG"], "a") as f:
    f.write(json.dumps({"fg": fb, "pt": pt["fwd_bwd_tokens_per_s"], "fg_s": sm, "pt_s": pt["sample_tokens_per_s"]}) + "\n")
PY
    i=$((i + 1))
done
# Over the rounds: each side's median and the ratio of the medians (single rounds swing with the
# machine: PyTorch's best-of-N alone has varied 62-108 k tokens/s between rounds here).
LOG="$ROUNDS_LOG" python3 - <<'PY'
import json, os, statistics as st
rs = [json.loads(l) for l in open(os.environ["LOG"]) if l.strip()]
if len(rs) > 1:
    fg, pt = st.median(r["fg"] for r in rs), st.median(r["pt"] for r in rs)
    ratios = sorted(r["fg"] / r["pt"] for r in rs)
    fs, ps = st.median(r["fg_s"] for r in rs), st.median(r["pt_s"] for r in rs)
    print(f"median of {len(rs)} rounds: fwd+bwd FineGrain {fg/1e3:.1f}k PyTorch {pt/1e3:.1f}k = {fg/pt:.2f}x "
          f"(rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x) | sampling {fs/1e3:.1f}k vs {ps/1e3:.1f}k = {fs/ps:.1f}x")
PY
