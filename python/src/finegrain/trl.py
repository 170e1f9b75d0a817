"""Token-level FineGrain advantages for Hugging Face TRL's ``GRPOTrainer``.

TRL computes one advantage per completion (shape ``(B,)``) inside ``_generate_and_score_completions``;
its ``_compute_loss`` also accepts ``(B, T)`` advantages. This module gives

- :func:`token_advantages` — TRL-shaped data (``completion_mask [B, T]``, ``rewards [B]``, groups of
  ``num_generations`` consecutive completions or explicit group / prompt ids, optional per-token rewards
  ``[B, T]``) -> ``[B, T]`` advantages from any FineGrain estimator through the service. Needs neither trl
  nor torch.
- :class:`FineGrainGRPOMixin` and ``FineGrainGRPOTrainer`` (= the mixin over ``trl.GRPOTrainer``, built on
  first access so this module imports without trl): overrides ``_generate_and_score_completions`` (the
  route TRL's maintainers recommend, huggingface/trl#4525) and replaces ``output["advantages"]`` by the
  ``(B, T)`` token advantages of ``finegrain_estimator`` (default ``trl_grpo``: TRL's own GRPO conventions,
  group mean, ``scale_rewards`` group/batch/none, epsilon 1e-4).

    from finegrain.trl import FineGrainGRPOTrainer
    trainer = FineGrainGRPOTrainer(model=..., reward_funcs=..., args=GRPOConfig(...), train_dataset=...)
    trainer.finegrain_estimator = "tempo"            # any estimator of GET /v1/methods
    trainer.finegrain_params = {"td_weight": 0.5}

To feed dense rewards, override :meth:`FineGrainGRPOMixin.finegrain_token_rewards` to return a ``[B, T]``
tensor for the local batch (added to the outcome reward placed on each completion's last token).
The service URL and token come from ``FINEGRAIN_URL`` / ``FINEGRAIN_TOKEN`` unless ``finegrain_client`` is set.

Rewards are TRL's weighted sum over reward functions (``multi_objective_aggregation="sum_then_normalize"``);
completions for which every reward function returned ``None`` get advantage 0 and stay out of the group
statistics, as in TRL. Masked positions (padding, and tool tokens when TRL has a ``tool_mask``) are 0.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence

import numpy as np

from finegrain import _tensors
from finegrain.client import Client, shared_client

log = logging.getLogger(__name__)


def _scale_rewards_param(scale_rewards: Any) -> str:
    """TRL's ``scale_rewards`` (``"group"``/``"batch"``/``"none"``, or the older bools) as FineGrain's param."""
    if scale_rewards is True:
        return "group"
    if scale_rewards is False or scale_rewards is None:
        return "none"
    s = str(scale_rewards).lower()
    if s not in ("group", "batch", "none"):
        raise ValueError(f"scale_rewards must be 'group', 'batch' or 'none', not {scale_rewards!r}")
    return s


def group_index(batch_size: int, num_generations: Optional[int] = None,
                group_ids: Optional[Sequence[Hashable]] = None, prompt_ids: Any = None) -> List[Any]:
    """One group label per completion, from exactly one of: ``num_generations`` (TRL's layout: groups of
    that many consecutive completions), ``group_ids`` (any str/int labels) or ``prompt_ids`` (``[B, P]``
    token ids; equal rows form a group)."""
    given = sum(x is not None for x in (num_generations, group_ids, prompt_ids))
    if given != 1:
        raise ValueError("give exactly one of num_generations, group_ids, prompt_ids")
    if num_generations is not None:
        g = int(num_generations)
        if g < 1 or batch_size % g:
            raise ValueError(f"batch of {batch_size} completions is not a whole number of groups of {g}")
        return [i // g for i in range(batch_size)]
    if group_ids is not None:
        ids = list(group_ids.tolist() if isinstance(group_ids, np.ndarray) else group_ids)
        if len(ids) != batch_size:
            raise ValueError(f"{len(ids)} group ids for {batch_size} completions")
        return [x if isinstance(x, (str, int)) and not isinstance(x, bool) else str(x) for x in ids]
    rows = _tensors.as_numpy(prompt_ids)
    if rows.ndim != 2 or rows.shape[0] != batch_size:
        raise ValueError(f"prompt_ids must be [B, P] with B={batch_size}, got shape {list(rows.shape)}")
    seen: Dict[bytes, int] = {}
    return [seen.setdefault(np.ascontiguousarray(r).tobytes(), len(seen)) for r in rows]


def _last_valid(mask: np.ndarray) -> np.ndarray:
    """Index of the last nonzero mask position per row (0 for an all-zero row)."""
    nz = mask != 0
    T = mask.shape[1]
    last = T - 1 - np.argmax(nz[:, ::-1], axis=1)
    return np.where(nz.any(axis=1), last, 0)


def token_advantages(completion_mask: Any, rewards: Any, *, num_generations: Optional[int] = None,
                     group_ids: Optional[Sequence[Hashable]] = None, prompt_ids: Any = None,
                     token_rewards: Any = None, estimator: str = "trl_grpo",
                     params: Optional[Mapping[str, Any]] = None, scale_rewards: Any = None,
                     client: Optional[Client] = None, layout: str = "padded",
                     encoding: str = "base64") -> Any:
    """FineGrain token advantages ``[B, T]`` for a TRL batch.

    Args:
        completion_mask: ``[B, T]`` 1 on completion tokens that enter the loss (TRL's ``completion_mask``,
            times ``tool_mask`` if any).
        rewards: ``[B]`` scalar reward per completion; NaN = unscorable (advantage 0, left out of the
            group statistics).
        num_generations / group_ids / prompt_ids: the grouping (exactly one; see :func:`group_index`).
        token_rewards: optional ``[B, T]`` dense rewards, added to the outcome reward, which is placed on
            each completion's last mask token.
        estimator: FineGrain estimator (default ``trl_grpo``).
        params: estimator params.
        scale_rewards: TRL's ``scale_rewards`` for ``trl_grpo`` (``"group"``, ``"batch"``, ``"none"``,
            or a bool); ignored when ``params`` sets ``scale_rewards``.
        client: a :class:`finegrain.Client` (default: shared client from ``FINEGRAIN_URL``).
        layout: ``"padded"`` (verl-layout request, compact) or ``"rollouts"`` (one rollout object per
            completion, JSON).
        encoding: tensor encoding for the padded layout (``"base64"`` or ``"json"``).

    Returns:
        float32 advantages ``[B, T]``, zero on masked positions: a torch tensor on ``completion_mask``'s
        device when it is a tensor, else a numpy array.
    """
    mask = _tensors.as_numpy(completion_mask)
    if mask.ndim != 2:
        raise ValueError(f"completion_mask must be [B, T], got shape {list(mask.shape)}")
    B, T = mask.shape
    r = _tensors.as_numpy(rewards).astype(np.float64).reshape(-1)
    if r.shape[0] != B:
        raise ValueError(f"{r.shape[0]} rewards for {B} completions")
    groups = group_index(B, num_generations, group_ids, prompt_ids)
    dense = None
    if token_rewards is not None:
        dense = _tensors.as_numpy(token_rewards).astype(np.float32)
        if dense.shape != (B, T):
            raise ValueError(f"token_rewards must have shape {[B, T]}, got {list(dense.shape)}")
    p = dict(params or {})
    if estimator == "trl_grpo" and scale_rewards is not None and "scale_rewards" not in p:
        p["scale_rewards"] = _scale_rewards_param(scale_rewards)
    c = client or shared_client()

    out = np.zeros((B, T), dtype=np.float32)
    rows = np.flatnonzero(np.isfinite(r))
    if rows.size and T:
        m = mask[rows]
        last = _last_valid(m)
        if layout == "padded":
            tlr = np.zeros((rows.size, T), dtype=np.float32)
            tlr[np.arange(rows.size), last] = r[rows]
            if dense is not None:
                tlr += dense[rows]
            adv, _ = c.advantages_padded(estimator, tlr, m, index=[groups[i] for i in rows],
                                         params=p, encoding=encoding)
            out[rows] = adv
        elif layout == "rollouts":
            rollouts = []
            for k, i in enumerate(rows):
                n = int(last[k]) + 1
                ro: Dict[str, Any] = {"group": groups[i], "tokens": [0] * n, "reward": float(r[i]),
                                      "mask": [1 if x else 0 for x in (m[k, :n] != 0)]}
                if dense is not None:
                    ro["token_rewards"] = dense[i, :n].tolist()
                rollouts.append(ro)
            answered = c.advantages(estimator, rollouts, params=p)
            for k, (i, ro) in enumerate(zip(rows, answered)):
                a = np.asarray(ro["advantages"], dtype=np.float32)
                out[i, :a.shape[0]] = a
        else:
            raise ValueError(f"layout must be 'padded' or 'rollouts', not {layout!r}")
    out[mask == 0] = 0.0
    if hasattr(completion_mask, "detach") and hasattr(completion_mask, "device"):
        import torch

        return torch.from_numpy(out).to(completion_mask.device)
    return out


class FineGrainGRPOMixin:
    """Mix into a ``trl.GRPOTrainer`` subclass (before it in the bases) to train on FineGrain ``(B, T)``
    token advantages. Configure with the attributes below (class or instance)."""

    #: FineGrain estimator name.
    finegrain_estimator: str = "trl_grpo"
    #: Extra estimator params.
    finegrain_params: Optional[Dict[str, Any]] = None
    #: Client to use (default: shared client from FINEGRAIN_URL / FINEGRAIN_TOKEN).
    finegrain_client: Optional[Client] = None
    #: Request layout, see :func:`token_advantages`.
    finegrain_layout: str = "padded"

    def finegrain_token_rewards(self, inputs: Any, output: Mapping[str, Any]) -> Any:
        """Hook: dense per-token rewards ``[B_local, T]`` for this batch, or ``None`` (outcome only)."""
        return None

    def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> Any:
        """TRL's reward computation, keeping the gathered ``rewards_per_func`` for the token advantages."""
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)  # type: ignore[misc]
        self._finegrain_rewards_per_func = rewards_per_func
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: Any) -> Any:
        """TRL's generation and scoring, then ``output["advantages"]`` := FineGrain ``(B, T)`` advantages."""
        import torch

        output = super()._generate_and_score_completions(inputs)  # type: ignore[misc]
        rpf = self.__dict__.pop("_finegrain_rewards_per_func", None)
        if rpf is None:
            raise RuntimeError("FineGrainGRPOMixin: _calculate_rewards was not called during scoring")
        if getattr(self, "multi_objective_aggregation", "sum_then_normalize") != "sum_then_normalize":
            log.warning("FineGrainGRPOMixin uses the weighted sum of rewards (sum_then_normalize); "
                        "multi_objective_aggregation=%r is ignored", self.multi_objective_aggregation)
        rpf = rpf.float()
        weights = self.reward_weights.to(rpf.device).float()  # type: ignore[attr-defined]
        rewards = (rpf * weights.unsqueeze(0)).nansum(dim=1)
        rewards[torch.isnan(rpf).all(dim=1)] = float("nan")

        mask = output["completion_mask"]
        if output.get("tool_mask") is not None:
            mask = mask * output["tool_mask"]
        training = getattr(getattr(self, "model", None), "training", True)
        G = self.num_generations if training else getattr(self, "num_generations_eval", None) or self.num_generations  # type: ignore[attr-defined]
        dense = self.finegrain_token_rewards(inputs, output)

        acc = self.accelerator  # type: ignore[attr-defined]
        n_local, t_local = mask.shape
        if acc.num_processes > 1:
            mask_all = acc.gather(acc.pad_across_processes(mask, dim=1, pad_index=0))
            dense_all = None if dense is None else acc.gather(acc.pad_across_processes(dense, dim=1, pad_index=0))
        else:
            mask_all, dense_all = mask, dense
        params = dict(self.finegrain_params or {})
        adv = token_advantages(mask_all, rewards, num_generations=G, token_rewards=dense_all,
                               estimator=self.finegrain_estimator, params=params,
                               scale_rewards=getattr(self, "scale_rewards", None)
                               if self.finegrain_estimator == "trl_grpo" else None,
                               client=self.finegrain_client, layout=self.finegrain_layout)
        start = acc.process_index * n_local
        output["advantages"] = adv[start:start + n_local, :t_local].to(mask.device)
        return output


def _build_trainer() -> type:
    from trl import GRPOTrainer  # imported on first use only

    class FineGrainGRPOTrainer(FineGrainGRPOMixin, GRPOTrainer):
        """``trl.GRPOTrainer`` trained on FineGrain token advantages (see :class:`FineGrainGRPOMixin`)."""

    return FineGrainGRPOTrainer


_trainer_cls: Optional[type] = None


def __getattr__(name: str) -> Any:
    """Module attribute hook: ``FineGrainGRPOTrainer`` imports trl on first access."""
    global _trainer_cls
    if name == "FineGrainGRPOTrainer":
        if _trainer_cls is None:
            _trainer_cls = _build_trainer()
        return _trainer_cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["token_advantages", "group_index", "FineGrainGRPOMixin", "FineGrainGRPOTrainer"]
