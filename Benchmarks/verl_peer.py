#!/usr/bin/env python3
"""Peer benchmark: verl 0.9.1's own advantage estimators and policy losses on CPU.

Builds the FineGrain benchmark batch (see Benchmarks/README.md) as numpy arrays, converts it to
torch float32 tensors laid out the way verl lays out a rollout batch (right-padded, shape
(B, T) with T = --max-length), and times the functions in ``verl.trainer.ppo.core_algos``.

Prints one JSON object per line:

    {"name": ..., "impl": "verl", "tokens": N, "median_s": ..., "tokens_per_s": ..., "peak_rss_mb": ...}

``tokens`` is N = the sum of the valid response lengths (not B*T).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from typing import Callable

import numpy as np

# Thread count must be fixed before torch spins up its pools.
NUM_THREADS = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--responses", type=int, default=512, help="batch size B (default 512)")
    p.add_argument("--max-length", type=int, default=4096, help="padded width T; lengths ~ U{1..T} (default 4096)")
    p.add_argument("--group", type=int, default=8, help="consecutive responses per prompt group (default 8)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up calls per method (default 1)")
    p.add_argument("--seed", type=int, default=1234, help="RNG seed for the batch (default 1234)")
    p.add_argument("--threads", type=int, default=NUM_THREADS, help="torch intra-op threads (default 2)")
    p.add_argument(
        "--only",
        default="",
        help="comma-separated subset of method names to run (default: all)",
    )
    args = p.parse_args(argv)
    if args.responses < 1 or args.max_length < 1 or args.group < 1 or args.repeats < 1 or args.warmup < 0:
        p.error("--responses, --max-length, --group, --repeats must be >= 1 and --warmup >= 0")
    return args


# ----------------------------------------------------------------------------------------------
# Batch
# ----------------------------------------------------------------------------------------------


def build_batch_numpy(responses: int, max_length: int, group: int, seed: int) -> dict[str, np.ndarray]:
    """The benchmark batch, as numpy arrays (float32 unless noted).

    Draw order from one ``np.random.default_rng(seed)``: lengths, outcomes, values, old_log_prob
    noise, new-vs-old noise, ref-vs-old noise, advantages.
    """
    rng = np.random.default_rng(seed)
    B, T = responses, max_length
    lengths = rng.integers(1, T + 1, size=B, dtype=np.int64)  # uniform on 1..T inclusive
    outcomes = (rng.random(B) < 0.5).astype(np.float32)  # Bernoulli(0.5)

    cols = np.arange(T, dtype=np.int64)[None, :]
    mask = (cols < lengths[:, None]).astype(np.float32)  # right padding

    rewards = np.zeros((B, T), dtype=np.float32)
    rewards[np.arange(B), lengths - 1] = outcomes  # outcome on the last valid token

    values = rng.standard_normal((B, T), dtype=np.float32)
    old_log_prob = -np.abs(rng.standard_normal((B, T), dtype=np.float32))
    log_prob = old_log_prob + np.float32(0.05) * rng.standard_normal((B, T), dtype=np.float32)
    ref_log_prob = old_log_prob + np.float32(0.05) * rng.standard_normal((B, T), dtype=np.float32)
    advantages = rng.standard_normal((B, T), dtype=np.float32)

    # Padded positions carry zeros, as in a real verl batch.
    for a in (values, old_log_prob, log_prob, ref_log_prob, advantages):
        a *= mask

    uid = np.arange(B, dtype=np.int64) // group
    return {
        "lengths": lengths,
        "outcomes": outcomes,
        "response_mask": mask,
        "token_level_rewards": rewards,
        "values": values,
        "old_log_prob": old_log_prob,
        "log_prob": log_prob,
        "ref_log_prob": ref_log_prob,
        "advantages": advantages,
        "uid": uid,
    }


# ----------------------------------------------------------------------------------------------
# Measurement helpers
# ----------------------------------------------------------------------------------------------


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) for this process; Linux >= 4.0."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB -> MiB
    except OSError:
        pass
    # Fallback: lifetime peak of the process (ru_maxrss is kB on Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(fn: Callable[[], object], repeats: int, warmup: int) -> tuple[float, float]:
    """Run ``fn`` warmup times untimed, then ``repeats`` times timed; return (median_s, peak_rss_mb)."""
    _reset_peak_rss()
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), _peak_rss_mb()


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------


METHODS = (
    "gae",
    "reinforce_plus_plus",
    "grpo_loop",
    "grpo_vectorized",
    "rloo_loop",
    "rloo_vectorized",
    "ppo_clip_fwd_bwd",
    "kl_k3",
)


def make_actor_config(group: int):
    """The actor config object that verl 0.9.1's compute_policy_loss_vanilla reads.

    In 0.9.1 the clip ratios are not keyword arguments: the function reads ``config.clip_ratio``,
    ``config.clip_ratio_low``, ``config.clip_ratio_high``, ``config.get("clip_ratio_c", 3.0)`` and
    splats ``config.global_batch_info`` into ``agg_loss``; it asserts the config is not an AlgoConfig.
    ActorConfig's __post_init__ requires ``strategy``, ``rollout_n`` and a micro-batch size.
    """
    clip = dict(clip_ratio=0.2, clip_ratio_low=0.2, clip_ratio_high=0.2, clip_ratio_c=3.0, loss_agg_mode="token-mean")
    try:
        from verl.workers.config import ActorConfig

        return ActorConfig(strategy="fsdp", rollout_n=group, ppo_micro_batch_size_per_gpu=group, **clip)
    except Exception as exc:  # pragma: no cover - only if ActorConfig's required fields change
        from omegaconf import OmegaConf

        print(f"verl_peer: ActorConfig unavailable ({exc!r}); using an omegaconf DictConfig", file=sys.stderr)
        return OmegaConf.create({**clip, "global_batch_info": {}})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(args.threads))

    import torch

    torch.set_num_threads(args.threads)

    from verl.trainer.config import AlgoConfig
    from verl.trainer.ppo import core_algos as ca

    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(METHODS)
    if unknown:
        print(f"verl_peer: unknown method(s): {sorted(unknown)}; known: {list(METHODS)}", file=sys.stderr)
        return 2

    nb = build_batch_numpy(args.responses, args.max_length, args.group, args.seed)
    tokens = int(nb["lengths"].sum())
    t = {k: torch.from_numpy(v) for k, v in nb.items() if v.dtype == np.float32}
    response_mask = t["response_mask"]
    rewards = t["token_level_rewards"]
    values = t["values"]
    old_log_prob = t["old_log_prob"]
    ref_log_prob = t["ref_log_prob"]
    advantages = t["advantages"]
    # verl's outcome estimators take the group ids as a numpy array (data.non_tensor_batch["uid"]).
    index = nb["uid"]

    algo_cfg = AlgoConfig(gamma=1.0, lam=0.95)
    actor_cfg = make_actor_config(args.group)

    # New log-probs: a leaf tensor with requires_grad, as the actor's forward would produce.
    log_prob = t["log_prob"].clone().requires_grad_()

    def ppo_fwd_bwd():
        log_prob.grad = None
        loss, _metrics = ca.compute_policy_loss_vanilla(
            old_log_prob=old_log_prob,
            log_prob=log_prob,
            advantages=advantages,
            response_mask=response_mask,
            loss_agg_mode="token-mean",
            config=actor_cfg,
        )
        loss.backward()
        return loss

    logprob_nograd = t["log_prob"]

    bench: dict[str, Callable[[], object]] = {
        "gae": lambda: ca.compute_gae_advantage_return(
            token_level_rewards=rewards, values=values, response_mask=response_mask, gamma=1.0, lam=0.95
        ),
        "reinforce_plus_plus": lambda: ca.compute_reinforce_plus_plus_outcome_advantage(
            token_level_rewards=rewards, response_mask=response_mask, config=algo_cfg
        ),
        "grpo_loop": lambda: ca.compute_grpo_outcome_advantage(
            token_level_rewards=rewards, response_mask=response_mask, index=index
        ),
        "grpo_vectorized": lambda: ca.compute_grpo_vectorized_outcome_advantage(
            token_level_rewards=rewards, response_mask=response_mask, index=index
        ),
        "rloo_loop": lambda: ca.compute_rloo_outcome_advantage(
            token_level_rewards=rewards, response_mask=response_mask, index=index, config=algo_cfg
        ),
        "rloo_vectorized": lambda: ca.compute_rloo_vectorized_outcome_advantage(
            token_level_rewards=rewards, response_mask=response_mask, index=index, config=algo_cfg
        ),
        "ppo_clip_fwd_bwd": ppo_fwd_bwd,
        "kl_k3": lambda: ca.kl_penalty(logprob_nograd, ref_log_prob, "low_var_kl"),
    }

    for name in METHODS:
        if only and name not in only:
            continue
        median_s, peak = measure(bench[name], args.repeats, args.warmup)
        rec = {
            "name": name,
            "impl": "verl",
            "tokens": tokens,
            "median_s": median_s,
            "tokens_per_s": tokens / median_s if median_s > 0 else float("inf"),
            "peak_rss_mb": round(peak, 1),
        }
        print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
