#!/usr/bin/env python3
"""Compare FineGrain's benchmark output with the verl peer's and print a Markdown table.

    python3 Benchmarks/compare.py OURS.jsonl PEER.jsonl [--strict]

Both files hold one JSON object per line with at least ``name`` and either ``tokens_per_s`` or
``tokens`` and ``median_s``; ``impl`` is optional. Lines that are not JSON objects are ignored
(with a note on stderr). If a name occurs more than once, the last line wins.

FineGrain names: gae, reinforce_plus_plus, grpo, rloo, ppo_clip_fwd_bwd, kl_k3 (others are shown
as extra rows when the peer has the same name). Peer names: gae, reinforce_plus_plus, grpo_loop,
grpo_vectorized, rloo_loop, rloo_vectorized, ppo_clip_fwd_bwd, kl_k3.

ratio = FineGrain tokens/s / verl tokens/s. With --strict the exit status is 1 when a target is
not met or a targeted method is missing from either file. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

# (row label, FineGrain name, peer name, target ratio or None for an informational row)
ROWS: list[tuple[str, str, str, float | None]] = [
    ("GAE (γ=1, λ=0.95)", "gae", "gae", 50.0),
    ("REINFORCE++ (γ=1)", "reinforce_plus_plus", "reinforce_plus_plus", 50.0),
    ("GRPO vs verl vectorized", "grpo", "grpo_vectorized", 1.0),
    ("RLOO vs verl vectorized", "rloo", "rloo_vectorized", 1.0),
    ("PPO clip fwd+bwd", "ppo_clip_fwd_bwd", "ppo_clip_fwd_bwd", 5.0),
    ("KL k3 (low_var_kl)", "kl_k3", "kl_k3", 1.5),
    ("GRPO vs verl loop", "grpo", "grpo_loop", None),
    ("RLOO vs verl loop", "rloo", "rloo_loop", None),
]

# Spellings of FineGrain names that mean the same method.
ALIASES = {
    "reinforce++": "reinforce_plus_plus",
    "reinforcepp": "reinforce_plus_plus",
    "k3": "kl_k3",
    "low_var_kl": "kl_k3",
    "ppo_clip": "ppo_clip_fwd_bwd",
}


def normalize(name: str) -> str:
    n = name.strip().lower().replace("-", "_")
    return ALIASES.get(n, n)


def load(path: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    skipped = 0
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            if not isinstance(rec, dict) or "name" not in rec:
                skipped += 1
                continue
            tps = rec.get("tokens_per_s")
            if tps is None:
                tokens, median = rec.get("tokens"), rec.get("median_s")
                if tokens is None or not median:
                    print(f"compare: {path}:{lineno}: no tokens_per_s for {rec['name']!r}; ignored", file=sys.stderr)
                    continue
                tps = float(tokens) / float(median)
            rec = dict(rec, tokens_per_s=float(tps))
            out[normalize(str(rec["name"]))] = rec
    if skipped:
        print(f"compare: {path}: ignored {skipped} non-JSON line(s)", file=sys.stderr)
    return out


def fmt_tps(x: float | None) -> str:
    if x is None:
        return "—"
    if math.isinf(x):
        return "∞"
    if x >= 1e9:
        return f"{x / 1e9:.2f} G"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "—"
    if math.isinf(r):
        return "∞"
    return f"{r:.2f}x" if r < 100 else f"{r:.0f}x"


def build_table(ours: dict[str, dict], peer: dict[str, dict]) -> tuple[list[str], bool]:
    lines = [
        "| method | FineGrain tokens/s | verl tokens/s | ratio | target | met? |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    all_met = True
    used_ours: set[str] = set()
    for label, our_name, peer_name, target in ROWS:
        o, p = ours.get(our_name), peer.get(peer_name)
        used_ours.add(our_name)
        o_tps = o["tokens_per_s"] if o else None
        p_tps = p["tokens_per_s"] if p else None
        ratio = o_tps / p_tps if (o_tps is not None and p_tps) else None
        if target is None:
            met, tgt = "", "(info)"
        elif ratio is None:
            met, tgt = "missing", f"≥ {target:g}x"
            all_met = False
        else:
            ok = ratio >= target
            met, tgt = ("yes" if ok else "**no**"), f"≥ {target:g}x"
            all_met &= ok
        lines.append(f"| {label} | {fmt_tps(o_tps)} | {fmt_tps(p_tps)} | {fmt_ratio(ratio)} | {tgt} | {met} |")
    # Any other method that both sides measured under the same name.
    for name in sorted((set(ours) & set(peer)) - used_ours - {r[2] for r in ROWS}):
        o_tps, p_tps = ours[name]["tokens_per_s"], peer[name]["tokens_per_s"]
        ratio = o_tps / p_tps if p_tps else None
        lines.append(f"| {name} | {fmt_tps(o_tps)} | {fmt_tps(p_tps)} | {fmt_ratio(ratio)} | (info) | |")
    return lines, all_met


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="FineGrain vs verl benchmark table (Markdown).")
    ap.add_argument("ours", help="FineGrain bench output (JSON lines)")
    ap.add_argument("peer", help="verl peer output from Benchmarks/verl_peer.py (JSON lines)")
    ap.add_argument("--strict", action="store_true", help="exit 1 unless every target is met")
    args = ap.parse_args(argv)

    ours, peer = load(args.ours), load(args.peer)
    lines, all_met = build_table(ours, peer)

    our_tokens = {r.get("tokens") for r in ours.values() if r.get("tokens") is not None}
    peer_tokens = {r.get("tokens") for r in peer.values() if r.get("tokens") is not None}
    print("\n".join(lines))
    print()
    print(f"tokens per batch: FineGrain {sorted(our_tokens) or '?'}, verl {sorted(peer_tokens) or '?'}")
    if our_tokens and peer_tokens and our_tokens != peer_tokens:
        a, b = max(our_tokens | peer_tokens), min(our_tokens | peer_tokens)
        gap = (a - b) / b * 100 if b else float("inf")
        # The two sides draw lengths with different RNGs, so totals differ by a few percent even for
        # the same --responses/--max-length; tokens/s is per token, so that is still a fair comparison.
        level = "**warning:**" if gap > 10 else "note:"
        print(f"{level} token totals differ by {gap:.1f}% (different length draws); rates are per token.")
    only_ours = sorted(set(ours) - {r[1] for r in ROWS} - set(peer))
    if only_ours:
        print(f"FineGrain-only methods (no verl peer): {', '.join(only_ours)}")
    print(f"all targets met: {'yes' if all_met else 'no'}")
    return 1 if (args.strict and not all_met) else 0


if __name__ == "__main__":
    sys.exit(main())
