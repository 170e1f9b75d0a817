"""finegrain.verl: registered estimators reproduce verl 0.9.1's own on the same tensors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
core_algos = pytest.importorskip("verl.trainer.ppo.core_algos")

from conftest import SRC, free_port  # noqa: E402

ATOL = 1e-5
RTOL = 1e-5


@pytest.fixture(scope="module")
def fgverl(server):
    """finegrain.verl, with the estimators (and their params) discovered from the test server."""
    import finegrain.verl as fgv

    fgv.register(url=server.url)
    return fgv


def algo_config(**kw):
    from verl.trainer.config import AlgoConfig

    return AlgoConfig(**kw)


def make_batch(seed, group_sizes=(5, 3, 1, 4, 2), T=24, dense=False, holes=False, binary=False):
    """A verl-layout batch: interleaved uid groups (one singleton), uneven right-padded lengths (one full,
    one of length 1), outcome reward on the last valid token (optionally dense rewards and mask holes)."""
    rng = np.random.default_rng(seed)
    uids = [f"uid-{seed}-{g}" for g, n in enumerate(group_sizes) for _ in range(n)]
    uids = [uids[i] for i in rng.permutation(len(uids))]
    B = len(uids)
    lengths = rng.integers(2, T + 1, size=B)
    lengths[0], lengths[-1] = T, 1
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    if holes:  # tool/observation tokens inside responses (never the last valid token)
        for i in range(B):
            n = lengths[i]
            if n > 4:
                a = rng.integers(1, n - 2)
                mask[i, a:a + rng.integers(1, 3)] = 0
    rewards = np.zeros((B, T), dtype=np.float32)
    outcome = rng.integers(0, 2, size=B).astype(np.float32) if binary else rng.normal(size=B).astype(np.float32)
    rewards[np.arange(B), lengths - 1] = outcome
    if dense:
        rewards += (rng.normal(scale=0.3, size=(B, T)) * mask).astype(np.float32)
    values = rng.normal(size=(B, T)).astype(np.float32)
    return {
        "token_level_rewards": torch.from_numpy(rewards),
        "response_mask": torch.from_numpy(mask),
        "index": np.array(uids, dtype=object),
        "values": torch.from_numpy(values),
    }


def assert_close(ours, theirs):
    assert isinstance(ours, torch.Tensor) and ours.shape == theirs.shape and ours.dtype == theirs.dtype
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=RTOL)


def test_registers_defaults_and_server_estimators(fgverl, client):
    names = set(core_algos.ADV_ESTIMATOR_REGISTRY)
    assert {"finegrain_grpo", "finegrain_gae", "finegrain_rloo"} <= names
    for est in client.estimators():
        assert f"finegrain_{est}" in names
    fn = core_algos.get_adv_estimator_fn("finegrain_grpo")
    assert fgverl.register(url=None, discover_server=False)  # idempotent re-registration
    assert core_algos.get_adv_estimator_fn("finegrain_grpo") is fn


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("norm", [True, False])
@pytest.mark.parametrize("kind", ["gaussian", "binary", "dense"])
def test_grpo_parity(fgverl, seed, norm, kind):
    b = make_batch(seed, dense=kind == "dense", binary=kind == "binary")
    theirs = core_algos.compute_grpo_outcome_advantage(b["token_level_rewards"].clone(), b["response_mask"], b["index"],
                                                       norm_adv_by_std_in_grpo=norm)
    fn = core_algos.get_adv_estimator_fn("finegrain_grpo")
    ours = fn(token_level_rewards=b["token_level_rewards"], response_mask=b["response_mask"], index=b["index"],
              config=algo_config(norm_adv_by_std_in_grpo=norm))
    assert_close(ours[0], theirs[0])
    assert_close(ours[1], theirs[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["gaussian", "binary", "dense"])
def test_rloo_parity(fgverl, seed, kind):
    b = make_batch(seed + 10, dense=kind == "dense", binary=kind == "binary")
    cfg = algo_config()
    theirs = core_algos.compute_rloo_outcome_advantage(b["token_level_rewards"].clone(), b["response_mask"],
                                                       b["index"], config=cfg)
    fn = core_algos.get_adv_estimator_fn("finegrain_rloo")
    ours = fn(token_level_rewards=b["token_level_rewards"], response_mask=b["response_mask"], index=b["index"],
              config=cfg)
    assert_close(ours[0], theirs[0])
    assert_close(ours[1], theirs[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma,lam", [(1.0, 1.0), (0.99, 0.95), (0.9, 0.5)])
@pytest.mark.parametrize("holes", [False, True])
def test_gae_parity(fgverl, seed, gamma, lam, holes):
    b = make_batch(seed + 20, dense=True, holes=holes)
    theirs = core_algos.compute_gae_advantage_return(b["token_level_rewards"], b["values"], b["response_mask"],
                                                     gamma, lam)
    fn = core_algos.get_adv_estimator_fn("finegrain_gae")
    ours = fn(token_level_rewards=b["token_level_rewards"], response_mask=b["response_mask"], index=b["index"],
              values=b["values"], config=algo_config(gamma=gamma, lam=lam))
    assert_close(ours[0], theirs[0])  # full width, padded positions included
    assert_close(ours[1], theirs[1])


@pytest.mark.parametrize("name", ["reinforce_plus_plus", "reinforce_plus_plus_baseline", "remax", "opo", "gpg",
                                  "grpo_passk", "grpo_vectorized", "rloo_vectorized"])
@pytest.mark.parametrize("kind", ["binary", "dense", "holes"])
def test_other_verl_estimators_parity(fgverl, name, kind):
    """The rest of verl's registry, called as verl's compute_advantage calls a registered estimator."""
    b = make_batch(80, group_sizes=(5, 3, 2, 4) if name == "grpo_passk" else (5, 3, 1, 4, 2),
                   dense=kind != "binary", holes=kind == "holes", binary=kind == "binary")
    kw = {"token_level_rewards": b["token_level_rewards"], "response_mask": b["response_mask"],
          "config": algo_config(gamma=0.95), "index": b["index"]}
    if name == "remax":
        kw["reward_baselines"] = torch.from_numpy(np.random.default_rng(81).normal(size=len(b["index"])).astype(np.float32))
    theirs = core_algos.get_adv_estimator_fn(name)(**{k: v.clone() if hasattr(v, "clone") else v for k, v in kw.items()})
    ours = core_algos.get_adv_estimator_fn(f"finegrain_{name}")(**kw)
    assert_close(ours[0], theirs[0])
    assert_close(ours[1], theirs[1])


def test_gae_keyword_gamma_lam_win_over_config(fgverl):
    b = make_batch(30)
    theirs = core_algos.compute_gae_advantage_return(b["token_level_rewards"], b["values"], b["response_mask"],
                                                     0.9, 0.7)
    fn = core_algos.get_adv_estimator_fn("finegrain_gae")
    ours = fn(token_level_rewards=b["token_level_rewards"], response_mask=b["response_mask"], values=b["values"],
              gamma=0.9, lam=0.7, config=algo_config(gamma=1.0, lam=1.0))
    assert_close(ours[0], theirs[0])


def test_singleton_groups_and_missing_index(fgverl):
    b = make_batch(40, group_sizes=(1, 1, 1, 1, 1, 1))
    theirs = core_algos.compute_grpo_outcome_advantage(b["token_level_rewards"].clone(), b["response_mask"],
                                                       b["index"])
    fn = core_algos.get_adv_estimator_fn("finegrain_grpo")
    for index in (b["index"], None):  # no uid: one group per row
        ours = fn(token_level_rewards=b["token_level_rewards"], response_mask=b["response_mask"], index=index,
                  config=algo_config())
        assert_close(ours[0], theirs[0])
    theirs = core_algos.compute_rloo_outcome_advantage(b["token_level_rewards"].clone(), b["response_mask"],
                                                       b["index"], config=algo_config())
    ours = core_algos.get_adv_estimator_fn("finegrain_rloo")(
        token_level_rewards=b["token_level_rewards"], response_mask=b["response_mask"], index=b["index"],
        config=algo_config())
    assert_close(ours[0], theirs[0])


def test_output_follows_input_dtype(fgverl):
    b = make_batch(50)
    fn = core_algos.get_adv_estimator_fn("finegrain_grpo")
    tlr64 = b["token_level_rewards"].double()
    adv, ret = fn(token_level_rewards=tlr64, response_mask=b["response_mask"].bool(), index=b["index"],
                  config=algo_config())
    assert adv.dtype == torch.float64 and ret.dtype == torch.float64 and adv.device == tlr64.device
    theirs, _ = core_algos.compute_grpo_outcome_advantage(b["token_level_rewards"].clone(), b["response_mask"],
                                                          b["index"])
    torch.testing.assert_close(adv.float(), theirs, atol=ATOL, rtol=RTOL)


def test_extra_verl_kwargs_are_ignored(fgverl):
    b = make_batch(60)
    fn = core_algos.get_adv_estimator_fn("finegrain_grpo")
    fn(token_level_rewards=b["token_level_rewards"], response_mask=b["response_mask"], index=b["index"],
       config=algo_config(), sum_pi_squared=None, rollout_is_weights=None, non_tensor_batch={}, batch=None)


def test_gae_without_values_explains(fgverl):
    b = make_batch(61)
    fn = core_algos.get_adv_estimator_fn("finegrain_gae")
    with pytest.raises(ValueError, match="values"):
        fn(token_level_rewards=b["token_level_rewards"], response_mask=b["response_mask"], index=b["index"],
           config=algo_config())


def test_params_mapping(fgverl, monkeypatch):
    cfg = algo_config(gamma=0.9, lam=0.8, norm_adv_by_std_in_grpo=False)
    assert fgverl.estimator_params("gae", cfg) == {"gamma": 0.9, "lam": 0.8}
    assert fgverl.estimator_params("grpo", cfg) == {"norm_adv_by_std_in_grpo": False}
    assert fgverl.estimator_params("rloo", cfg) == {}
    assert fgverl.estimator_params("grpo", cfg, epsilon=1e-4) == {"norm_adv_by_std_in_grpo": False, "epsilon": 1e-4}
    monkeypatch.setenv("FINEGRAIN_PARAMS", '{"epsilon": 0.5}')
    assert fgverl.estimator_params("grpo", None) == {"epsilon": 0.5}
    fgverl.configure("finegrain_grpo", epsilon=0.25)
    try:
        assert fgverl.estimator_params("grpo", None) == {"epsilon": 0.25}
        assert fgverl.estimator_params("grpo", {"finegrain_params": {"epsilon": 0.1}}) == {"epsilon": 0.25}
    finally:
        fgverl.configure("grpo", epsilon=None)
    assert fgverl.estimator_params("grpo", {"finegrain_params": {"epsilon": 0.1}}) == {"epsilon": 0.1}


def test_params_reach_the_server(fgverl, monkeypatch):
    b = make_batch(62)
    fn = core_algos.get_adv_estimator_fn("finegrain_grpo")
    monkeypatch.setenv("FINEGRAIN_PARAMS", '{"epsilon": 0.5}')
    ours, _ = fn(token_level_rewards=b["token_level_rewards"], response_mask=b["response_mask"], index=b["index"],
                 config=algo_config())
    theirs, _ = core_algos.compute_grpo_outcome_advantage(b["token_level_rewards"].clone(), b["response_mask"],
                                                          b["index"], epsilon=0.5)
    assert_close(ours, theirs)


def test_compute_advantage_wrapper_passes_values(fgverl):
    """verl's compute_advantage gives registered estimators no values; the wrapper does (finegrain_* only)."""
    from verl.protocol import DataProto

    b = make_batch(70, holes=True)
    data = DataProto.from_dict(tensors={"token_level_rewards": b["token_level_rewards"],
                                        "response_mask": b["response_mask"], "values": b["values"]},
                               non_tensors={"uid": b["index"]})
    calls = []

    def original(data, adv_estimator, gamma=1.0, lam=1.0, num_repeat=1, norm_adv_by_std_in_grpo=True, config=None):
        calls.append(adv_estimator)
        return data

    wrapped = fgverl.wrap_compute_advantage(original)
    assert fgverl.wrap_compute_advantage(wrapped) is wrapped
    cfg = algo_config(gamma=0.95, lam=0.9)
    out = wrapped(data, "finegrain_gae", gamma=0.95, lam=0.9, config=cfg)
    theirs = core_algos.compute_gae_advantage_return(b["token_level_rewards"], b["values"], b["response_mask"],
                                                     0.95, 0.9)
    assert_close(out.batch["advantages"], theirs[0])
    assert_close(out.batch["returns"], theirs[1])
    assert calls == []
    wrapped(data, "gae", config=cfg)
    assert calls == ["gae"]


def test_import_hook_patches_trainer_modules(fgverl, tmp_path, monkeypatch):
    (tmp_path / "fg_fake_trainer.py").write_text(textwrap.dedent("""
        def compute_advantage(data, adv_estimator, gamma=1.0, lam=1.0, num_repeat=1,
                              norm_adv_by_std_in_grpo=True, config=None):
            return ("original", adv_estimator)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import finegrain.verl_trainer_patch as patch
    monkeypatch.setattr(patch, "PATCH_TARGETS", [*patch.PATCH_TARGETS, "fg_fake_trainer"])
    fgverl.install_compute_advantage_patch()
    sys.modules.pop("fg_fake_trainer", None)
    import fg_fake_trainer

    try:
        assert getattr(fg_fake_trainer.compute_advantage, "_finegrain_wrapped", False)
        assert fg_fake_trainer.compute_advantage(None, "grpo") == ("original", "grpo")
    finally:
        sys.modules.pop("fg_fake_trainer", None)


def _subprocess_registry(env_extra):
    code = ("import verl\n"
            "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY as R\n"
            "print(' '.join(sorted(k for k in R if k.startswith('finegrain_'))))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINEGRAIN_", "VERL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env.update(env_extra)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return set(p.stdout.split())


def test_env_hook_import_with_server_down():
    names = _subprocess_registry({"VERL_USE_EXTERNAL_MODULES": "finegrain.verl", "VERL_USE_EXTERNAL_PLUGINS": "none",
                                  "FINEGRAIN_URL": f"http://127.0.0.1:{free_port()}"})
    assert {"finegrain_grpo", "finegrain_gae", "finegrain_rloo"} <= names


def test_entry_point_import_with_server_up(server, client):
    from importlib.metadata import entry_points

    if not any(ep.value == "finegrain.verl" for ep in entry_points(group="verl.plugins")):
        pytest.skip("finegrain is not pip-installed here (no verl.plugins entry point)")
    names = _subprocess_registry({"FINEGRAIN_URL": server.url})
    assert {f"finegrain_{e}" for e in client.estimators()} <= names
