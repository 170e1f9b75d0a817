"""FineGrain policy losses inside verl: ``actor_rollout_ref.actor.policy_loss.loss_mode=finegrain_<loss>``.

:func:`register` (called when :mod:`finegrain.verl` is imported) adds ``finegrain_<loss>`` to verl's
``POLICY_LOSS_REGISTRY`` (``core_algos.register_policy_loss``) for every policy loss of the service.
verl calls ``fn(old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config,
rollout_is_weights)``; the function sends the detached tensors to ``POST /v1/losses`` (verl form) and
gets back the loss value ``L``, its metrics and ``g = dL / d log_prob``. It returns the surrogate

    pg_loss = sum(g * log_prob) - sum(g * log_prob).detach() + L

whose value is ``L`` and whose autograd gradient with respect to ``log_prob`` is exactly ``g``, so the
actor's ``backward()`` works unchanged. Metrics come back as ``actor/<name>``, as verl's own losses name
them. Params: ``clip_ratio``, ``clip_ratio_low``, ``clip_ratio_high``, ``clip_ratio_c`` from the actor
config, ``loss_agg_mode``, and verl's ``config.global_batch_info`` (``dp_size``, ``batch_num_tokens``,
``global_batch_size``, ``loss_scale_factor``), each passed when the loss declares it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Optional

import numpy as np

from finegrain.client import Client, shared_client

log = logging.getLogger(__name__)

PREFIX = "finegrain_"
#: Registered when the service is not reachable at import (the verl-parity policy losses).
DEFAULT_POLICY_LOSSES = ("vanilla", "gspo", "gpg", "clip_cov", "kl_cov", "geo_mean", "cispo", "sapo",
                         "dppo_tv", "dppo_kl", "reinforce", "ppo_clip", "dro")
#: Actor-config fields passed under the same name when the loss declares them.
CONFIG_FIELDS = ("clip_ratio", "clip_ratio_low", "clip_ratio_high", "clip_ratio_c")
#: ``config.global_batch_info`` keys passed the same way.
BATCH_INFO_FIELDS = ("dp_size", "batch_num_tokens", "global_batch_size", "loss_scale_factor")

_declared: Dict[str, Optional[frozenset]] = {}


def _get(config: Any, key: str) -> Any:
    if config is None:
        return None
    if isinstance(config, dict):
        return config.get(key)
    getter = getattr(config, "get", None)
    if callable(getter):
        try:
            return getter(key, None)
        except Exception:  # noqa: BLE001 - dataclass configs may not take a default
            pass
    return getattr(config, key, None)


def _number(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    return v


def loss_params(loss: str, config: Any, loss_agg_mode: str) -> Dict[str, Any]:
    """The FineGrain params of one verl call (only those the loss declares, when that is known)."""
    declared = _declared.get(loss)
    out: Dict[str, Any] = {"loss_agg_mode": loss_agg_mode}
    for key in CONFIG_FIELDS:
        v = _get(config, key)
        if v is not None:
            out[key] = float(_number(v))
    info = _get(config, "global_batch_info") or {}
    for key in BATCH_INFO_FIELDS:
        v = info.get(key) if isinstance(info, dict) else None
        if v is not None:
            out[key] = _number(v)
    if declared is not None:
        out = {k: v for k, v in out.items() if k in declared}
    return out


def policy_loss_fn(loss: str, client: Optional[Client] = None) -> Callable[..., Any]:
    """verl's policy-loss signature around ``POST /v1/losses`` for FineGrain loss ``loss``."""
    import torch

    def fn(old_log_prob: Any, log_prob: Any, advantages: Any, response_mask: Any,
           loss_agg_mode: str = "token-mean", config: Any = None, rollout_is_weights: Any = None):
        c = client or shared_client()
        value, metrics, grad = c.losses_padded(
            loss, response_mask, params=loss_params(loss, config, loss_agg_mode),
            log_prob=log_prob.detach(), old_log_prob=old_log_prob, advantages=advantages,
            rollout_is_weights=rollout_is_weights)
        g = torch.as_tensor(np.ascontiguousarray(grad), dtype=log_prob.dtype, device=log_prob.device)
        surrogate = (g * log_prob).sum()
        pg_loss = surrogate - surrogate.detach() + torch.as_tensor(value, dtype=log_prob.dtype, device=log_prob.device)
        return pg_loss, {f"actor/{k}": float(v) for k, v in metrics.items()}

    fn.__name__ = f"{PREFIX}{loss}"
    fn.__doc__ = f"FineGrain policy loss '{loss}' through finegrain serve (POST /v1/losses, verl form)."
    return fn


def register(methods: Optional[Iterable[Dict[str, Any]]] = None, client: Optional[Client] = None) -> List[str]:
    """Registers ``finegrain_<loss>`` for each policy loss in ``methods`` (``/v1/methods`` entries; the
    static list when ``None``). Returns the verl names registered."""
    from verl.trainer.ppo import core_algos

    names: List[str] = []
    if methods is None:
        for name in DEFAULT_POLICY_LOSSES:
            _declared.setdefault(name, None)
            names.append(name)
    else:
        for m in methods:
            if m.get("kind") != "policy_loss":
                continue
            _declared[m["name"]] = frozenset(p["name"] for p in m.get("params", []) if "name" in p)
            names.append(m["name"])
    registered = []
    for name in names:
        verl_name = PREFIX + name
        core_algos.register_policy_loss(verl_name)(policy_loss_fn(name, client))
        registered.append(verl_name)
    return registered
