"""finegrain.trl: token advantages for TRL data, checked against a numpy recomputation of TRL's GRPO.

None of this needs trl; the mixin is exercised over a stand-in for GRPOTrainer.
"""

from __future__ import annotations

import numpy as np
import pytest

from finegrain.trl import FineGrainGRPOMixin, group_index, token_advantages


def trl_grpo(rewards, G, scale="group", eps=1e-4):
    """TRL GRPOTrainer's advantages (sum_then_normalize): group nanmean, Bessel nanstd, + 1e-4; NaN -> 0."""
    r = np.asarray(rewards, dtype=np.float64).reshape(-1, G)
    mean = np.nanmean(r, axis=1, keepdims=True)
    if scale == "batch":
        std = np.full_like(r, np.nanstd(r, ddof=1))
    else:
        std = np.nanstd(r, axis=1, ddof=1, keepdims=True) * np.ones_like(r)
    a = r - mean
    if scale != "none":
        a = a / (std + eps)
    return np.nan_to_num(a.reshape(-1), nan=0.0)


def batch(seed, B=8, T=6, tool_holes=False):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = T
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    if tool_holes:
        mask[1, 0] = 0 if lengths[1] > 1 else mask[1, 0]
        if lengths[2] > 3:
            mask[2, 1:3] = 0
    rewards = rng.integers(0, 3, size=B).astype(np.float32) / 2
    return mask, rewards


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("layout", ["padded", "rollouts"])
def test_trl_grpo_matches_numpy(client, seed, scale, layout):
    mask, rewards = batch(seed, tool_holes=seed == 2)
    adv = token_advantages(mask, rewards, num_generations=4, scale_rewards=scale, client=client, layout=layout)
    expect = trl_grpo(rewards, 4, scale)[:, None] * mask
    assert adv.shape == mask.shape and adv.dtype == np.float32
    np.testing.assert_allclose(adv, expect, rtol=1e-5, atol=1e-6)


def test_hand_checked_small_batch(client):
    # two groups of 2: rewards (1, 0) and (0.5, 0.5); group std (Bessel) of (1, 0) is sqrt(0.5)
    mask = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]])
    adv = token_advantages(mask, [1.0, 0.0, 0.5, 0.5], num_generations=2, client=client)
    a = 0.5 / (np.sqrt(0.5) + 1e-4)
    np.testing.assert_allclose(adv, [[a, a, 0], [-a, 0, 0], [0, 0, 0], [0, 0, 0]], rtol=1e-5, atol=1e-7)


def test_bool_scale_rewards_and_json_encoding(client):
    mask, rewards = batch(3)
    a1 = token_advantages(mask, rewards, num_generations=2, scale_rewards=True, client=client, encoding="json")
    a2 = token_advantages(mask, rewards, num_generations=2, scale_rewards="group", client=client)
    np.testing.assert_allclose(a1, a2, rtol=1e-6, atol=1e-7)
    a3 = token_advantages(mask, rewards, num_generations=2, scale_rewards=False, client=client)
    np.testing.assert_allclose(a3, trl_grpo(rewards, 2, "none")[:, None] * mask, rtol=1e-5, atol=1e-6)


def test_unscorable_completions_get_zero_and_leave_the_baseline(client):
    mask, rewards = batch(4)
    rewards = rewards.astype(np.float64)
    rewards[[1, 6]] = np.nan
    adv = token_advantages(mask, rewards, num_generations=4, client=client)
    np.testing.assert_allclose(adv, trl_grpo(rewards, 4)[:, None] * mask, rtol=1e-5, atol=1e-6)
    assert not adv[1].any() and not adv[6].any()


def test_groupings_agree(client):
    mask, rewards = batch(5)
    ref = token_advantages(mask, rewards, num_generations=4, client=client)
    a = token_advantages(mask, rewards, group_ids=["p0"] * 4 + ["p1"] * 4, client=client)
    prompts = np.array([[5, 6, 7]] * 4 + [[5, 6, 8]] * 4)
    b = token_advantages(mask, rewards, prompt_ids=prompts, client=client)
    np.testing.assert_allclose(a, ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b, ref, rtol=1e-6, atol=1e-7)


@pytest.mark.no_server
def test_group_index_validation():
    assert group_index(4, num_generations=2) == [0, 0, 1, 1]
    assert group_index(3, prompt_ids=[[1, 2], [1, 2], [3, 4]]) == [0, 0, 1]
    with pytest.raises(ValueError):
        group_index(5, num_generations=2)
    with pytest.raises(ValueError):
        group_index(4)
    with pytest.raises(ValueError):
        group_index(4, num_generations=2, group_ids=[1, 1, 2, 2])


def test_dense_token_rewards_with_verl_grpo(client):
    """With per-token rewards and verl's GRPO, the score is outcome + sum of token rewards."""
    mask, rewards = batch(6)
    rng = np.random.default_rng(6)
    dense = (rng.normal(size=mask.shape) * mask).astype(np.float32)
    adv = token_advantages(mask, rewards, num_generations=4, token_rewards=dense, estimator="grpo", client=client)
    score = rewards.astype(np.float64) + dense.sum(axis=1)
    s = score.reshape(-1, 4)
    expect = ((s - s.mean(1, keepdims=True)) / (s.std(1, ddof=1, keepdims=True) + 1e-6)).reshape(-1)
    np.testing.assert_allclose(adv, expect[:, None] * mask, rtol=1e-5, atol=1e-5)


def test_torch_in_torch_out(client):
    torch = pytest.importorskip("torch")
    mask, rewards = batch(7)
    adv = token_advantages(torch.from_numpy(mask), torch.from_numpy(rewards), num_generations=4, client=client)
    assert isinstance(adv, torch.Tensor) and adv.dtype == torch.float32 and adv.shape == mask.shape
    np.testing.assert_allclose(adv.numpy(), trl_grpo(rewards, 4)[:, None] * mask, rtol=1e-5, atol=1e-6)


class _Accelerator:
    num_processes = 1
    process_index = 0
    device = "cpu"


class _FakeGRPOTrainer:
    """Just enough of trl.GRPOTrainer's scoring step for the mixin: _calculate_rewards is called from
    _generate_and_score_completions, whose output has completion_mask and (B,) advantages."""

    def __init__(self, mask, rewards_per_func, G, scale="group", tool_mask=None):
        import torch

        self.accelerator = _Accelerator()
        self.reward_weights = torch.tensor([1.0, 0.5])
        self.num_generations = G
        self.num_generations_eval = G
        self.scale_rewards = scale
        self.model = type("M", (), {"training": True})()
        self._mask = torch.as_tensor(mask)
        self._rpf = torch.as_tensor(rewards_per_func, dtype=torch.float32)
        self._tool_mask = tool_mask

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        return self._rpf

    def _generate_and_score_completions(self, inputs):
        import torch

        self._calculate_rewards(inputs, None, None, None)
        out = {"completion_mask": self._mask, "advantages": torch.zeros(self._mask.shape[0])}
        if self._tool_mask is not None:
            out["tool_mask"] = torch.as_tensor(self._tool_mask)
        return out


def test_mixin_replaces_advantages_with_token_advantages(client):
    torch = pytest.importorskip("torch")

    class Trainer(FineGrainGRPOMixin, _FakeGRPOTrainer):
        pass

    mask, _ = batch(8)
    rng = np.random.default_rng(8)
    rpf = rng.integers(0, 2, size=(8, 2)).astype(np.float32)
    rpf[3] = np.nan  # every reward function returned None
    tool = np.ones_like(mask)
    tool[0, 1] = 0
    t = Trainer(mask, rpf, G=4, tool_mask=tool)
    t.finegrain_client = client
    out = t._generate_and_score_completions(inputs=[{}] * 8)
    rewards = (np.nan_to_num(rpf) * [1.0, 0.5]).sum(1)
    rewards[3] = np.nan
    expect = trl_grpo(rewards, 4)[:, None] * mask * tool
    assert out["advantages"].shape == tuple(mask.shape)
    np.testing.assert_allclose(out["advantages"].numpy(), expect, rtol=1e-5, atol=1e-6)

    class Dense(Trainer):
        finegrain_estimator = "grpo"

        def finegrain_token_rewards(self, inputs, output):
            return torch.ones_like(output["completion_mask"], dtype=torch.float32) * output["completion_mask"]

    d = Dense(mask, np.nan_to_num(rpf), G=4)
    d.finegrain_client = client
    out = d._generate_and_score_completions(inputs=[{}] * 8)
    score = (np.nan_to_num(rpf) * [1.0, 0.5]).sum(1) + mask.sum(1)
    s = score.reshape(-1, 4)
    expect = ((s - s.mean(1, keepdims=True)) / (s.std(1, ddof=1, keepdims=True) + 1e-6)).reshape(-1)[:, None] * mask
    np.testing.assert_allclose(out["advantages"].numpy(), expect, rtol=1e-5, atol=1e-5)


@pytest.mark.no_server
def test_module_imports_without_trl_and_trainer_is_lazy():
    import importlib.util

    import finegrain.trl as m

    if importlib.util.find_spec("trl") is None:
        with pytest.raises(ImportError):
            m.FineGrainGRPOTrainer  # noqa: B018
    else:
        from trl import GRPOTrainer

        assert issubclass(m.FineGrainGRPOTrainer, GRPOTrainer)
        assert issubclass(m.FineGrainGRPOTrainer, FineGrainGRPOMixin)
