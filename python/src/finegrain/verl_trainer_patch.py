"""Wrap verl's ``compute_advantage`` so that ``finegrain_*`` estimators receive the batch columns verl 0.9.1
does not pass to registered estimators (``values``, ``old_log_probs``, ``ref_log_prob``,
``reward_baselines``). Other estimator names call verl's original unchanged.

Installed by :mod:`finegrain.verl` at import (``FINEGRAIN_VERL_PATCH=0`` turns it off): modules in
:data:`PATCH_TARGETS` already imported are patched at once, later imports through a meta-path hook.
"""

from __future__ import annotations

import functools
import importlib.abc
import logging
import sys
from typing import Any, Callable, Dict, Optional

from verl.trainer.ppo import core_algos as _core_algos

log = logging.getLogger("finegrain.verl")

#: Prefix of every name finegrain.verl registers with verl.
PREFIX = "finegrain_"
#: Batch columns handed to finegrain_* estimators when present.
_OPTIONAL_COLUMNS = ("values", "old_log_probs", "ref_log_prob", "reward_baselines")


#: Modules whose ``compute_advantage`` global is wrapped (when imported).
PATCH_TARGETS = ["verl.trainer.ppo.ray_trainer", "verl.trainer.ppo.v1.utils",
                 "verl.experimental.separation.ray_trainer"]


def wrap_compute_advantage(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap verl's ``compute_advantage(data, adv_estimator, gamma, lam, num_repeat, norm_adv_by_std_in_grpo,
    config)`` so that ``finegrain_*`` estimators also receive ``values``, ``old_log_probs``,
    ``ref_log_prob`` and ``reward_baselines`` from ``data.batch``; other names call ``original``."""
    if getattr(original, "_finegrain_wrapped", False):
        return original

    @functools.wraps(original)
    def compute_advantage(data: Any, adv_estimator: Any, gamma: float = 1.0, lam: float = 1.0,
                          num_repeat: int = 1, norm_adv_by_std_in_grpo: bool = True,
                          config: Any = None, **kwargs: Any) -> Any:
        name = getattr(adv_estimator, "value", adv_estimator)
        if not (isinstance(name, str) and name.startswith(PREFIX)):
            return original(data, adv_estimator, gamma=gamma, lam=lam, num_repeat=num_repeat,
                            norm_adv_by_std_in_grpo=norm_adv_by_std_in_grpo, config=config, **kwargs)
        batch = data.batch
        keys = set(batch.keys())
        if "response_mask" not in keys:
            make_mask = getattr(original, "__globals__", {}).get("compute_response_mask")
            if make_mask is None:
                raise KeyError("data.batch has no response_mask")
            batch["response_mask"] = make_mask(data)
        fn = _core_algos.get_adv_estimator_fn(name)
        call: Dict[str, Any] = {"token_level_rewards": batch["token_level_rewards"],
                                "response_mask": batch["response_mask"], "config": config,
                                "gamma": gamma, "lam": lam, "norm_adv_by_std_in_grpo": norm_adv_by_std_in_grpo}
        if "uid" in data.non_tensor_batch:
            call["index"] = data.non_tensor_batch["uid"]
        for key in _OPTIONAL_COLUMNS:
            if key in keys:
                call[key] = batch[key]
        advantages, returns = fn(**call)
        batch["advantages"] = advantages
        batch["returns"] = returns
        return data

    compute_advantage._finegrain_wrapped = True  # type: ignore[attr-defined]
    compute_advantage._finegrain_original = original  # type: ignore[attr-defined]
    return compute_advantage


def patch_module(module: Any) -> bool:
    """Replace ``module.compute_advantage`` by :func:`wrap_compute_advantage` of it; True if patched."""
    original = getattr(module, "compute_advantage", None)
    if original is None or getattr(original, "_finegrain_wrapped", False):
        return False
    module.compute_advantage = wrap_compute_advantage(original)
    return True


class _Loader(importlib.abc.Loader):
    """Delegating loader that patches the module after the real loader executed it."""

    def __init__(self, inner: Any):
        self._inner = inner

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._inner.exec_module(module)
        try:
            patch_module(module)
        except Exception as e:  # noqa: BLE001 - never break verl's import
            log.warning("finegrain.verl: could not wrap %s.compute_advantage: %s", module.__name__, e)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Meta-path finder that hands :data:`PATCH_TARGETS` to their real finder, wrapping the loader."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in PATCH_TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


_finder: Optional[_PatchOnImport] = None


def install_compute_advantage_patch() -> None:
    """Wrap ``compute_advantage`` in the :data:`PATCH_TARGETS` already imported, and in those imported
    later (via a meta-path hook). Called at import unless ``FINEGRAIN_VERL_PATCH=0``."""
    global _finder
    for name in PATCH_TARGETS:
        mod = sys.modules.get(name)
        if mod is not None:
            patch_module(mod)
    if _finder is None:
        _finder = _PatchOnImport()
        sys.meta_path.insert(0, _finder)
