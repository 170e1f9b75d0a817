"""Same-host shared-memory transport: ``finegrain serve --shm-dir DIR`` with ``Client(shm_dir=DIR)``
(or ``FINEGRAIN_SHM_DIR`` for the adapters). Same answers as tensors in the body, references really used,
files cleaned up, and a server without the directory refuses them."""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import pytest

from conftest import start_server
from finegrain import Client, FineGrainError


@pytest.fixture(scope="module")
def shm_dir():
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="fg-test-shm-", dir=base)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def shm_server(tmp_path_factory, shm_dir):
    s = start_server(tmp_path_factory.mktemp("serve-shm"), ["--shm-dir", shm_dir])
    yield s
    s.stop()


def make_batch(seed, B=64, T=300, dense=False):
    """Right-padded rows in groups of 8, outcome on the last valid token, dense values (76.8 KB float32,
    above the client's 64 KiB threshold for shared memory)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, size=B)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    rewards = np.zeros((B, T), dtype=np.float32)
    rewards[np.arange(B), lengths - 1] = rng.normal(size=B).astype(np.float32)
    if dense:
        rewards += (rng.normal(scale=0.3, size=(B, T)) * mask).astype(np.float32)
    return {"token_level_rewards": rewards, "response_mask": mask, "index": [f"g{i // 8}" for i in range(B)],
            "values": rng.normal(size=(B, T)).astype(np.float32)}


class Spy:
    """Wraps ``Client.request`` to keep the last body sent and answer received."""

    def __init__(self, client):
        self.inner, self.body, self.doc = client.request, None, None
        client.request = self

    def __call__(self, method, path, body=None):
        self.body = body
        self.doc = self.inner(method, path, body)
        return self.doc


@pytest.mark.parametrize("estimator,dense", [("gae", False), ("gae", True), ("grpo", False), ("rloo", False)])
def test_same_answers_as_tensors_in_the_body(shm_server, shm_dir, estimator, dense):
    b = make_batch(7, dense=dense)
    params = {"gamma": 0.99, "lam": 0.95} if estimator == "gae" else None
    columns = {"values": b["values"]} if estimator == "gae" else {}
    plain = Client(shm_server.url).advantages_padded(estimator, b["token_level_rewards"], b["response_mask"],
                                                     index=b["index"], params=params, **columns)
    c = Client(shm_server.url, shm_dir=shm_dir)
    spy = Spy(c)
    via = c.advantages_padded(estimator, b["token_level_rewards"], b["response_mask"], index=b["index"],
                              params=params, **columns)
    np.testing.assert_array_equal(via[0], plain[0])
    np.testing.assert_array_equal(via[1], plain[1])
    verl = spy.body["verl"]
    assert "answer_shm" in spy.body
    if estimator == "gae":   # values by reference, and the per-token answer written into the answer file
        assert "shm" in verl["values"]
        assert "shm" in spy.doc["advantages"] and "shm" in spy.doc["returns"]
    else:                    # one value per row: answered inline, the file is not touched
        assert "row_values" in spy.doc["advantages"]
    # sparse outcome rewards stay inline; dense ones go by reference
    assert ("shm" in verl["token_level_rewards"]) == dense
    names = set(os.listdir(shm_dir))
    assert {n for n in names if n.startswith(f"fg-{os.getpid()}-")}, names
    c._shm.close()
    assert not {n for n in os.listdir(shm_dir) if n.startswith(f"fg-{os.getpid()}-")}


def test_files_are_reused_and_grow(shm_server, shm_dir):
    c = Client(shm_server.url, shm_dir=shm_dir)
    small, large = make_batch(1, B=64, T=300), make_batch(2, B=128, T=1100)
    for b in (small, large, small):
        ours = c.advantages_padded("gae", b["token_level_rewards"], b["response_mask"], values=b["values"])
        plain = Client(shm_server.url).advantages_padded("gae", b["token_level_rewards"], b["response_mask"],
                                                         values=b["values"])
        np.testing.assert_array_equal(ours[0], plain[0])
    assert len([n for n in os.listdir(shm_dir) if n.startswith(f"fg-{os.getpid()}-")]) == 2  # one pair
    c._shm.close()


def test_server_without_shm_dir_refuses(server, shm_dir):
    b = make_batch(3)
    c = Client(server.url, shm_dir=shm_dir)
    with pytest.raises(FineGrainError) as e:
        c.advantages_padded("gae", b["token_level_rewards"], b["response_mask"], values=b["values"])
    assert e.value.status == 400 and "--shm-dir" in str(e.value)
    c._shm.close()


def test_not_a_directory():
    with pytest.raises(ValueError, match="not a directory"):
        Client(shm_dir="/nonexistent/fg-shm")


def test_verl_plugin_uses_finegrain_shm_dir(shm_server, shm_dir, monkeypatch):
    torch = pytest.importorskip("torch")
    core_algos = pytest.importorskip("verl.trainer.ppo.core_algos")
    import finegrain.verl as fgv

    monkeypatch.setenv("FINEGRAIN_URL", shm_server.url)
    monkeypatch.setenv("FINEGRAIN_SHM_DIR", shm_dir)
    fgv.register(url=shm_server.url)
    b = make_batch(5, dense=True)
    rewards, mask, values = (torch.from_numpy(b[k]) for k in ("token_level_rewards", "response_mask", "values"))
    theirs = core_algos.compute_gae_advantage_return(rewards, values, mask, 0.99, 0.95)
    from verl.trainer.config import AlgoConfig

    fn = core_algos.get_adv_estimator_fn("finegrain_gae")
    ours = fn(token_level_rewards=rewards, response_mask=mask, index=np.array(b["index"], dtype=object),
              values=values, config=AlgoConfig(gamma=0.99, lam=0.95))
    torch.testing.assert_close(ours[0], theirs[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours[1], theirs[1], atol=1e-5, rtol=1e-5)
    assert [n for n in os.listdir(shm_dir) if n.startswith(f"fg-{os.getpid()}-")], "the plugin did not use shared memory"
