"""FineGrain rewards for OpenRLHF.

Two ways, both scoring with the server's default verifier (``math_answer``: the last number in the
response equals the label numerically):

1. **Remote reward URL** (nothing to install on the OpenRLHF side)::

       finegrain serve --port 8321 &
       python -m openrlhf.cli.train_ppo_ray ... \\
           --reward.remote_url http://127.0.0.1:8321/v1/openrlhf/reward --data.label_key answer

   OpenRLHF POSTs ``{"query": [prompt + response], "prompts": [prompt], "labels": [label]}`` and reads
   ``{"rewards": [...], "scores": [...], "extra_logs": {...}}``; the server strips the prompt prefix from
   each query before scoring. With ``finegrain serve --token T`` OpenRLHF cannot send the header, so keep
   the service on loopback without a token for this route.

2. **Reward-function file**: ``--reward.remote_url $(python -m finegrain.openrlhf --path)`` (a path ending
   in ``.py``); OpenRLHF loads this file and calls :func:`reward_func`, which calls the same route using
   ``FINEGRAIN_URL`` / ``FINEGRAIN_TOKEN`` (so a token works here).

``python -m finegrain.openrlhf`` prints the URL and the file path.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Sequence

# Absolute imports: OpenRLHF loads this file by path (importlib spec_from_file_location), not as a package.
from finegrain.client import DEFAULT_URL, shared_client

#: Route of OpenRLHF's remote reward protocol on ``finegrain serve``.
ROUTE = "/v1/openrlhf/reward"


def remote_url(base: str = "") -> str:
    """The value for ``--reward.remote_url``: ``base`` (default ``FINEGRAIN_URL`` or
    ``http://127.0.0.1:8321``) + ``/v1/openrlhf/reward``."""
    return (base or os.environ.get("FINEGRAIN_URL") or DEFAULT_URL).rstrip("/") + ROUTE


def _tensor(values: Sequence[float]) -> Any:
    """A float32 torch tensor when torch is importable (OpenRLHF expects tensors), else a numpy array."""
    try:
        import torch
    except ImportError:
        import numpy as np

        return np.asarray(values, dtype=np.float32)
    return torch.tensor(list(values), dtype=torch.float32)


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str], **kwargs: Any) -> Dict[str, Any]:
    """OpenRLHF reward function: score ``queries`` (prompt + response text) against ``labels`` through
    ``POST /v1/openrlhf/reward``.

    Returns ``{"rewards": Tensor[B], "scores": Tensor[B], "extra_logs": {name: Tensor[B]}}`` (tensors are
    float32 torch tensors, numpy arrays without torch). Extra keyword arguments from OpenRLHF are ignored.
    """
    if not (len(queries) == len(prompts) == len(labels)):
        raise ValueError(f"{len(queries)} queries, {len(prompts)} prompts, {len(labels)} labels")
    doc = shared_client().openrlhf_reward(queries, prompts, labels)
    rewards = [float(x) for x in doc["rewards"]]
    scores = [float(x) for x in doc.get("scores", rewards)]
    extra = {str(k): _tensor([float(x) for x in v]) for k, v in (doc.get("extra_logs") or {}).items()
             if isinstance(v, list)}
    return {"rewards": _tensor(rewards), "scores": _tensor(scores), "extra_logs": extra}


def main(argv: Sequence[str] = ()) -> int:
    """``python -m finegrain.openrlhf [--url|--path]``: print the remote URL and/or this file's path."""
    args = list(argv)
    path = os.path.abspath(__file__)
    if "--url" in args:
        print(remote_url())
    elif "--path" in args:
        print(path)
    else:
        print(f"--reward.remote_url {remote_url()}      # HTTP route")
        print(f"--reward.remote_url {path}      # reward_func file")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
