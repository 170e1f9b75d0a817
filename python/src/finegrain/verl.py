"""FineGrain advantage estimators inside verl (tested with verl 0.9.1).

Importing this module registers ``finegrain_<name>`` with ``verl.trainer.ppo.core_algos.register_adv_est``
for ``grpo``, ``gae``, ``rloo`` and the other verl-layout estimators in :data:`DEFAULT_ESTIMATORS`, plus
every estimator the service lists at ``GET /v1/methods`` if it answers at import time (the import never
fails because the service is down; the static list is registered then). Ways to get it imported in every
verl process:

- nothing: installing the package (``pip install ./python``) adds the ``verl.plugins`` entry point
  ``finegrain = finegrain.verl``, which verl loads at ``import verl`` unless
  ``VERL_USE_EXTERNAL_PLUGINS=none``;
- or explicitly ``VERL_USE_EXTERNAL_MODULES=finegrain.verl``.

Policy losses too (:mod:`finegrain.verl_losses`): ``actor_rollout_ref.actor.policy_loss.loss_mode=finegrain_<loss>``.

Then train with ``algorithm.adv_estimator=finegrain_grpo`` (or ``finegrain_rloo``, ``finegrain_tempo``, ...)
with ``finegrain serve`` running. Each call sends ``token_level_rewards``, ``response_mask``, the ``uid``
groups (and ``values`` / ``old_log_probs`` / ``ref_log_prob`` / ``reward_baselines`` when the estimator
needs them) in the compact base64 encoding to ``POST /v1/advantages`` and returns torch tensors
``(advantages, returns)`` with the dtype and device of ``token_level_rewards``.

Environment:
    ``FINEGRAIN_URL``      service URL (default ``http://127.0.0.1:8321``), read on every call
    ``FINEGRAIN_TOKEN``    bearer token (``finegrain serve --token``)
    ``FINEGRAIN_TIMEOUT``  seconds per request (default 60)
    ``FINEGRAIN_PARAMS``   JSON object of extra estimator params, e.g. ``{"epsilon": 1e-6}``
    ``FINEGRAIN_DISCOVER_TIMEOUT``  seconds the import waits for ``/v1/methods`` (default 2)
    ``FINEGRAIN_VERL_PATCH=0``      do not wrap verl's ``compute_advantage`` (see below)

Parameters: verl's ``AlgoConfig`` fields ``gamma``, ``lam`` and ``norm_adv_by_std_in_grpo`` are passed
under the same names to every estimator that declares a parameter of that name (``/v1/methods``);
``FINEGRAIN_PARAMS``, a mapping ``config.finegrain_params`` and :func:`configure` add or override params
(in that order of precedence, lowest first); keyword arguments of a direct call (``epsilon``, ``gamma``,
``lam``, ``norm_adv_by_std_in_grpo``) win over all of them.

What verl 0.9.1 passes, and ``finegrain_gae``
----------------------------------------------
``ray_trainer.compute_advantage`` special-cases only the literal names ``gae`` and ``grpo``; every other
(registered) estimator is called as ``fn(token_level_rewards=, response_mask=, config=, [index=uid],
[reward_baselines=])`` and receives **no** ``values``, ``old_log_probs`` or ``ref_log_prob`` (only the
built-in optimal-token-baseline names get ``old_log_probs``/``sum_pi_squared``; only ``gdpo`` gets the
raw batch). Also, verl enables the critic only for ``adv_estimator == "gae"``. So for ``finegrain_gae``
(and other value/log-prob based estimators such as ``finegrain_rto`` or ``finegrain_segment_rm``):

1. set ``critic.enable=True`` so the critic computes ``values`` (and is trained on our ``returns``);
2. keep the wrapper this module installs (default): it replaces ``compute_advantage`` in
   ``verl.trainer.ppo.ray_trainer``, ``verl.trainer.ppo.v1.utils`` and
   ``verl.experimental.separation.ray_trainer`` (patched when they are imported) by one that, **for
   ``finegrain_*`` names only**, also passes ``values``, ``old_log_probs``, ``ref_log_prob`` and
   ``reward_baselines`` from ``data.batch`` when present. Every other estimator goes to verl's own code
   unchanged. (The v1 trainer fetches ``values``, ``old_log_probs`` and ``ref_log_prob`` from the
   TransferQueue before computing advantages, so they are in the batch.)

Without the wrapper, ``finegrain_gae`` raises a ``ValueError`` saying that ``values`` is missing.
Still not passed by verl to any registered estimator: ``non_tensor_batch`` (per-sample metadata such as
step boundaries or PRM scores in ``extra_info``; open verl PR #7473) and ``rollout_is_weights``;
verl's ``use_pf_ppo`` reweighting runs only in its built-in ``gae`` branch; and the v1 trainer's
multi-session handling (``compute_advantage_for_multi_trajectories``: advantages of each agent session's
final output broadcast to its other outputs) applies only to the literal ``grpo``, so ``finegrain_grpo``
treats every output row as its own response (identical for single-turn rollouts).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from finegrain import verl_losses
from finegrain.client import Client, FineGrainError, client_from_env, shared_client

try:
    from verl.trainer.ppo import core_algos as _core_algos
except ImportError as _e:  # pragma: no cover - exercised only without verl
    raise ImportError(f"finegrain.verl needs verl (verl.trainer.ppo.core_algos): {_e}") from _e

log = logging.getLogger(__name__)

# PREFIX: the prefix of every name this module registers with verl ("finegrain_"). The compute_advantage
# wrapper (passes values / log-probs to finegrain_* estimators) lives in finegrain.verl_trainer_patch.
from finegrain.verl_trainer_patch import (  # noqa: E402
    _OPTIONAL_COLUMNS,
    PATCH_TARGETS,
    PREFIX,
    install_compute_advantage_patch,
    patch_module,
    wrap_compute_advantage,
)

#: Estimators registered even when the service is not reachable at import, with the FineGrain params that
#: verl config fields / keyword arguments may feed, and the batch columns they need besides the rewards.
DEFAULT_ESTIMATORS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "grpo": {"params": ("norm_adv_by_std_in_grpo", "epsilon"), "needs": ()},
    "gae": {"params": ("gamma", "lam"), "needs": ("values",)},
    "rloo": {"params": (), "needs": ()},
    "dr_grpo": {"params": (), "needs": ()},
    "grpo_passk": {"params": ("norm_adv_by_std_in_grpo", "epsilon"), "needs": ()},
    "grpo_vectorized": {"params": ("norm_adv_by_std_in_grpo", "epsilon"), "needs": ()},
    "rloo_vectorized": {"params": (), "needs": ()},
    "reinforce_plus_plus": {"params": ("gamma",), "needs": ()},
    "reinforce_plus_plus_baseline": {"params": (), "needs": ()},
    "remax": {"params": (), "needs": ("reward_baselines",)},
    "opo": {"params": (), "needs": ()},
    "gpg": {"params": (), "needs": ()},
    "trl_grpo": {"params": ("epsilon",), "needs": ()},
    "openrlhf_group_norm": {"params": ("epsilon",), "needs": ()},
}

#: verl config fields passed by name to estimators that declare a parameter of the same name.
CONFIG_FIELDS = ("gamma", "lam", "norm_adv_by_std_in_grpo")
#: Keyword arguments of a direct call that become params (when the estimator declares them).
KWARG_PARAMS = ("gamma", "lam", "norm_adv_by_std_in_grpo", "epsilon")
#: ``requires`` entries of ``/v1/methods`` -> verl batch keys sent in the verl request.
_REQUIRE_TO_VERL = {
    "values": "values",
    "old_logprobs": "old_log_probs",
    "ref_logprobs": "ref_log_prob",
    "reward_baseline": "reward_baselines",
}


class _Spec:
    """What is known of one FineGrain estimator: declared params, the batch columns it needs, and those it
    may use (``None`` = unknown: every column given is sent)."""

    def __init__(self, params: Optional[Iterable[str]], needs: Optional[Iterable[str]],
                 uses: Optional[Iterable[str]] = None):
        self.params = None if params is None else frozenset(params)
        self.needs = None if needs is None else tuple(needs)
        self.uses = self.needs if uses is None else tuple(uses)


_specs: Dict[str, _Spec] = {}
_listed_methods: Optional[List[Dict[str, Any]]] = None  # the last /v1/methods answer (policy losses too)
_functions: Dict[str, Callable[..., Any]] = {}
_user_params: Dict[str, Dict[str, Any]] = {}
_lock = threading.Lock()


def _cfg_get(config: Any, key: str) -> Any:
    """``config[key]`` for a dict, an omegaconf DictConfig or verl's ``AlgoConfig``; ``None`` when absent."""
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(key)
    getter = getattr(config, "get", None)
    if callable(getter):
        try:
            return getter(key, None)
        except Exception:  # noqa: BLE001 - struct-mode DictConfig and friends
            pass
    return getattr(config, key, None)


def _plain(v: Any) -> Any:
    """A JSON-able scalar from numpy / torch / omegaconf values."""
    if hasattr(v, "item") and callable(v.item):
        try:
            return v.item()
        except (ValueError, RuntimeError):
            pass
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def configure(estimator: str, **params: Any) -> None:
    """Set FineGrain params for one estimator (name with or without the ``finegrain_`` prefix) in this
    process, e.g. ``configure("tempo", td_weight=0.5)``; a value of ``None`` removes that param."""
    name = estimator[len(PREFIX):] if estimator.startswith(PREFIX) else estimator
    with _lock:
        cur = _user_params.setdefault(name, {})
        for k, v in params.items():
            if v is None:
                cur.pop(k, None)
            else:
                cur[k] = v


def estimator_params(estimator: str, config: Any = None, **explicit: Any) -> Dict[str, Any]:
    """The params sent for ``estimator`` (FineGrain name) given verl's ``config`` and call kwargs.

    Config fields and call kwargs are included only for params the estimator declares (the server
    rejects unknown params); user params (``FINEGRAIN_PARAMS``, ``config.finegrain_params``,
    :func:`configure`) are sent as given.
    """
    spec = _specs.get(estimator) or _Spec(None, None)
    declared = spec.params or frozenset()
    out: Dict[str, Any] = {}
    for key in CONFIG_FIELDS:
        v = _cfg_get(config, key)
        if v is not None and key in declared:
            out[key] = _plain(v)
    env = os.environ.get("FINEGRAIN_PARAMS")
    if env:
        try:
            extra = json.loads(env)
        except ValueError as e:
            raise ValueError(f"FINEGRAIN_PARAMS is not a JSON object: {e}") from None
        if not isinstance(extra, dict):
            raise ValueError("FINEGRAIN_PARAMS must be a JSON object of estimator params")
        out.update(extra)
    fg = _cfg_get(config, "finegrain_params")
    if fg is not None:
        out.update({str(k): _plain(v) for k, v in dict(fg).items()})
    out.update(_user_params.get(estimator, {}))
    for key in KWARG_PARAMS:
        v = explicit.get(key)
        if v is not None and key in declared:
            out[key] = _plain(v)
    return out


def _to_torch_like(arr: np.ndarray, like: Any) -> Any:
    """``arr`` as a tensor with ``like``'s floating dtype (float32 otherwise) and device; numpy stays numpy."""
    if not (hasattr(like, "detach") and hasattr(like, "device")):
        if isinstance(like, np.ndarray) and np.issubdtype(like.dtype, np.floating):
            return arr.astype(like.dtype, copy=False)
        return arr
    import torch

    dtype = like.dtype if like.is_floating_point() else torch.float32
    return torch.from_numpy(arr).to(device=like.device, dtype=dtype)


def estimator_fn(estimator: str) -> Callable[..., Any]:
    """The verl-signature function for FineGrain estimator ``estimator`` (cached; one per name).

    It accepts verl's keyword arguments (``token_level_rewards``, ``response_mask``, ``index``, ``config``,
    ``values``, ``reward_baselines``, ``old_log_probs``, ``ref_log_prob``, ``gamma``, ``lam``, ``epsilon``,
    ``norm_adv_by_std_in_grpo``; anything else is ignored) and returns ``(advantages, returns)``.
    """
    with _lock:
        fn = _functions.get(estimator)
        if fn is not None:
            return fn

        def finegrain_estimator(token_level_rewards: Any, response_mask: Any, index: Any = None,
                                config: Any = None, values: Any = None, reward_baselines: Any = None,
                                old_log_probs: Any = None, ref_log_prob: Any = None,
                                gamma: Any = None, lam: Any = None, epsilon: Any = None,
                                norm_adv_by_std_in_grpo: Any = None, **kwargs: Any) -> Tuple[Any, Any]:
            spec = _specs.get(estimator) or _Spec(None, None)
            params = estimator_params(estimator, config, gamma=gamma, lam=lam, epsilon=epsilon,
                                      norm_adv_by_std_in_grpo=norm_adv_by_std_in_grpo)
            given = {"values": values, "old_log_probs": old_log_probs, "ref_log_prob": ref_log_prob,
                     "reward_baselines": reward_baselines}
            if spec.needs is None:
                columns = {k: v for k, v in given.items() if v is not None}
            else:
                missing = [k for k in spec.needs if given.get(k) is None]
                if missing:
                    raise ValueError(
                        f"{PREFIX}{estimator} needs {', '.join(missing)}, which verl did not pass. verl's "
                        f"compute_advantage gives registered estimators only token_level_rewards, response_mask, "
                        f"index and reward_baselines; keep finegrain.verl's compute_advantage wrapper "
                        f"(FINEGRAIN_VERL_PATCH unset) so it passes values/old_log_probs/ref_log_prob from the "
                        f"batch, and set critic.enable=True for values.")
                columns = {k: given[k] for k in (spec.uses or ()) if given.get(k) is not None}
            adv, ret = shared_client().advantages_padded(
                estimator, token_level_rewards, response_mask, index=index, params=params,
                **columns)
            return _to_torch_like(adv, token_level_rewards), _to_torch_like(ret, token_level_rewards)

        finegrain_estimator.__name__ = f"{PREFIX}{estimator}"
        finegrain_estimator.__qualname__ = finegrain_estimator.__name__
        finegrain_estimator.__doc__ = (f"FineGrain estimator '{estimator}' through the service (FINEGRAIN_URL); "
                                       f"verl keyword arguments in, (advantages, returns) out.")
        _functions[estimator] = finegrain_estimator
        return finegrain_estimator


def _columns_from_requires(requires: Sequence[str]) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """``(needed, used)`` verl batch keys named (by their first word) in a ``/v1/methods`` ``requires``
    list; an entry with a ``(...)`` remark (conditional or optional) is used but not needed."""
    needs: List[str] = []
    uses: List[str] = []
    for r in requires or ():
        key = _REQUIRE_TO_VERL.get(str(r).split(" ")[0])
        if key is None:
            continue
        if key not in uses:
            uses.append(key)
        if "(" not in str(r) and key not in needs:
            needs.append(key)
    return tuple(needs), tuple(uses)


def discover(client: Optional[Client] = None) -> Dict[str, Dict[str, Any]]:
    """Ask the service for its estimators: ``{name: {"params": [...], "requires": [...]}}``.

    Raises :class:`finegrain.FineGrainError` when the service cannot be reached.
    """
    global _listed_methods
    c = client or client_from_env()
    out = {}
    methods = c.methods()
    _listed_methods = list(methods)
    for m in methods:
        if m.get("kind") == "estimator":
            out[m["name"]] = {"params": [p["name"] for p in m.get("params", []) if "name" in p],
                              "requires": list(m.get("requires", []))}
    return out


def register(names: Optional[Iterable[str]] = None, *, discover_server: bool = True,
             url: Optional[str] = None, token: Optional[str] = None,
             timeout: Optional[float] = None) -> List[str]:
    """Register ``finegrain_<name>`` estimators with verl and return the verl names registered.

    Args:
        names: FineGrain estimator names; default: :data:`DEFAULT_ESTIMATORS` plus everything the service
            lists (when ``discover_server``).
        discover_server: ask ``GET /v1/methods`` (at ``url`` or ``FINEGRAIN_URL``) for the estimators and
            their declared params; failures are logged, never raised.
        timeout: seconds for the discovery request (default ``FINEGRAIN_DISCOVER_TIMEOUT`` or 2).

    Safe to call again (e.g. once the server is up): names already registered by this module are kept,
    their declared params refreshed.
    """
    listed: Dict[str, Dict[str, Any]] = {}
    if discover_server:
        t = timeout if timeout is not None else float(os.environ.get("FINEGRAIN_DISCOVER_TIMEOUT", "2"))
        try:
            listed = discover(client_from_env(url, token, t))
        except (FineGrainError, OSError, ValueError, KeyError, TypeError) as e:
            log.info("finegrain.verl: service not reachable for discovery (%s); registering the static list", e)
    wanted = list(names) if names is not None else list(dict.fromkeys([*DEFAULT_ESTIMATORS, *listed]))
    registered = []
    for name in wanted:
        if name in listed:
            info = listed[name]
            _specs[name] = _Spec(info["params"], *_columns_from_requires(info["requires"]))
        elif name in DEFAULT_ESTIMATORS:
            _specs.setdefault(name, _Spec(DEFAULT_ESTIMATORS[name]["params"], DEFAULT_ESTIMATORS[name]["needs"]))
        else:
            _specs.setdefault(name, _Spec(None, None))
        fn = estimator_fn(name)
        verl_name = PREFIX + name
        existing = _core_algos.ADV_ESTIMATOR_REGISTRY.get(verl_name)
        if existing is not None and existing is not fn:
            log.warning("finegrain.verl: %s is already registered by %r; leaving it", verl_name, existing)
            continue
        _core_algos.register_adv_est(verl_name)(fn)
        registered.append(verl_name)
    if names is None:  # and the policy losses (finegrain.verl_losses), listed or static
        try:
            registered += verl_losses.register(_listed_methods if listed else None)
        except Exception as e:  # noqa: BLE001 - never fail the import over the losses
            log.warning("finegrain.verl: registering policy losses failed: %s", e)
    return registered


def _import_time_setup() -> None:
    try:
        register()
    except Exception as e:  # noqa: BLE001 - the import must never fail
        log.warning("finegrain.verl: registering estimators failed: %s", e)
    if os.environ.get("FINEGRAIN_VERL_PATCH", "1").strip().lower() not in ("0", "false", "no", "off"):
        try:
            install_compute_advantage_patch()
        except Exception as e:  # noqa: BLE001
            log.warning("finegrain.verl: could not install the compute_advantage wrapper: %s", e)


_import_time_setup()
