"""finegrain.verl_losses: registered policy losses reproduce verl 0.9.1's own: value, metrics, and the
gradient with respect to log_prob through autograd (the surrogate). (clip_cov and kl_cov pick the tokens
they clip with torch.randperm in verl, so they cannot be compared draw for draw and are left out.)"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
core_algos = pytest.importorskip("verl.trainer.ppo.core_algos")


@pytest.fixture(scope="module")
def fgverl(server):
    import finegrain.verl as fgv

    fgv.register(url=server.url)
    return fgv


def actor_config(**kw):
    from verl.workers.config import ActorConfig

    base = dict(clip_ratio=0.2, clip_ratio_low=0.2, clip_ratio_high=0.28, ppo_micro_batch_size_per_gpu=1,
                strategy="fsdp", rollout_n=1)
    base.update(kw)
    try:
        return ActorConfig(**base)
    except TypeError:
        base.pop("rollout_n")
        return ActorConfig(**base)


def batch(seed, B=6, T=20, holes=True):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, size=B)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float32)
    if holes:
        mask[0, 0] = 0
    old = rng.normal(-1.5, 0.5, size=(B, T)).astype(np.float32)
    new = old + rng.normal(0, 0.3, size=(B, T)).astype(np.float32)
    adv = rng.normal(size=(B, T)).astype(np.float32) * mask
    return [torch.tensor(x) for x in (old, new, adv, mask)]


@pytest.mark.parametrize("loss", ["vanilla", "gspo", "geo_mean", "cispo", "dppo_tv", "sapo"])
@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
@pytest.mark.parametrize("seed", [0, 1])
def test_policy_loss_parity(fgverl, loss, agg, seed):
    if loss != "vanilla" and agg != "token-mean" and seed == 1:
        pytest.skip("one seed is enough for the other aggregations")
    name = "finegrain_" + loss
    assert name in core_algos.POLICY_LOSS_REGISTRY
    cfg = actor_config()
    old, new, adv, mask = batch(seed)
    lp_theirs = new.clone().requires_grad_(True)
    theirs, m_theirs = core_algos.get_policy_loss_fn(loss)(old, lp_theirs, adv, mask, agg, cfg)
    theirs.backward()
    lp_ours = new.clone().requires_grad_(True)
    ours, m_ours = core_algos.get_policy_loss_fn(name)(old, lp_ours, adv, mask, agg, cfg)
    ours.backward()
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lp_ours.grad.numpy(), lp_theirs.grad.numpy(), rtol=1e-4, atol=1e-6)
    for k, v in m_theirs.items():
        if k in m_ours:
            np.testing.assert_allclose(m_ours[k], float(v), rtol=1e-4, atol=1e-6, err_msg=k)
    assert set(m_ours) & set(m_theirs), f"no common metric: {sorted(m_ours)} vs {sorted(m_theirs)}"


def test_rollout_is_weights_and_bad_input(fgverl, client):
    cfg = actor_config()
    old, new, adv, mask = batch(3)
    w = torch.rand_like(new) + 0.5
    lp1 = new.clone().requires_grad_(True)
    theirs, _ = core_algos.get_policy_loss_fn("vanilla")(old, lp1, adv, mask, "token-mean", cfg, rollout_is_weights=w)
    theirs.backward()
    lp2 = new.clone().requires_grad_(True)
    ours, _ = core_algos.get_policy_loss_fn("finegrain_vanilla")(old, lp2, adv, mask, "token-mean", cfg, rollout_is_weights=w)
    ours.backward()
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-5)
    np.testing.assert_allclose(lp2.grad.numpy(), lp1.grad.numpy(), rtol=1e-4, atol=1e-6)
    from finegrain import FineGrainError

    bad = adv.clone(); bad[1, 2] = float("nan")
    with pytest.raises(FineGrainError) as e:
        client.losses_padded("vanilla", mask, log_prob=new, old_log_prob=old, advantages=bad)
    assert e.value.status == 400 and "verl.advantages" in e.value.message and "row 1 column 2" in e.value.message
    with pytest.raises(FineGrainError) as e:
        client.losses_padded("vanilla", mask, log_prob=new, old_log_prob=old)
    assert e.value.status == 400 and "advantages" in e.value.message


def test_framed_and_base64_losses_agree(client):
    old, new, adv, mask = batch(4)
    kw = dict(log_prob=new, old_log_prob=old, advantages=adv)
    seen = {}
    inner = client._post_framed

    def spy(path, body, frame):
        doc, answer_frame = inner(path, body, frame)
        seen.update(body=body, doc=doc, answer_bytes=len(answer_frame))
        return doc, answer_frame

    client._post_framed = spy
    try:
        v_framed, m_framed, g_framed = client.losses_padded("vanilla", mask, params={"clip_ratio": 0.2}, **kw)
    finally:
        del client._post_framed
    assert all("frame_offset" in seen["body"]["verl"][k] for k in kw)          # the inputs travel raw
    assert "frame_offset" in seen["doc"]["gradient"] and seen["answer_bytes"] == 4 * mask.numel()
    v64, m64, g64 = client.losses_padded("vanilla", mask, params={"clip_ratio": 0.2}, encoding="base64", **kw)
    assert v_framed == v64 and m_framed == m64
    np.testing.assert_array_equal(g_framed, g64)
