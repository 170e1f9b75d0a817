"""finegrain.Client against the real server: routes, encodings, keep-alive."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from finegrain import Client, FineGrainError, _tensors


def grpo_reference(scores, groups, eps=1e-6, norm=True):
    """verl's loop GRPO on scalar scores: unbiased group std, singleton -> mean 0, std 1."""
    scores = np.asarray(scores, dtype=np.float64)
    out = np.empty_like(scores)
    for g in set(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        s = scores[idx]
        mean, std = (0.0, 1.0) if len(idx) == 1 else (s.mean(), s.std(ddof=1))
        out[idx] = (s - mean) / (std + eps) if norm else s - mean
    return out


def padded_batch(seed, group_sizes=(4, 3, 1, 2), T=9):
    """A right-padded batch with uneven lengths, interleaved groups and an outcome on the last token."""
    rng = np.random.default_rng(seed)
    groups = [f"q{g}" for g, n in enumerate(group_sizes) for _ in range(n)]
    perm = rng.permutation(len(groups))
    groups = [groups[i] for i in perm]
    B = len(groups)
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = T
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    outcome = rng.normal(size=B).astype(np.float32)
    tlr = np.zeros((B, T), dtype=np.float32)
    tlr[np.arange(B), lengths - 1] = outcome
    values = rng.normal(size=(B, T)).astype(np.float32)
    return groups, mask, tlr, outcome, lengths, values


# ---------------------------------------------------------------------------- tensor codec (no server)


@pytest.mark.no_server
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "uint8", "bool"])
def test_tensor_roundtrip(dtype):
    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    enc = _tensors.encode(a, "base64")
    assert enc["dtype"] == dtype and enc["shape"] == [3, 4]
    np.testing.assert_array_equal(_tensors.decode(enc, a.dtype), a)
    assert _tensors.encode(a, "json") == a.tolist()


@pytest.mark.no_server
def test_tensor_encoding_is_little_endian_c_order():
    a = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=">f4").T  # big-endian, Fortran order
    enc = _tensors.encode(a)
    import base64

    raw = np.frombuffer(base64.b64decode(enc["data"]), dtype="<f4")
    np.testing.assert_array_equal(raw, [1.0, 3.0, 2.0, 4.0])


@pytest.mark.no_server
def test_raw_base64_is_spliced_into_valid_json():
    import json

    from finegrain.client import _dump_body

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    body = {"x": [_tensors.encode(a, raw=True), "@fg-not-a-marker@"], "y": _tensors.encode(a * 2, raw=True),
            "s": "caf\u00e9"}
    doc = json.loads(_dump_body(body))
    np.testing.assert_array_equal(_tensors.decode(doc["x"][0]), a)
    np.testing.assert_array_equal(_tensors.decode(doc["y"]), a * 2)
    assert doc["x"][1] == "@fg-not-a-marker@" and doc["s"] == "caf\u00e9"


@pytest.mark.no_server
def test_compact_mask():
    assert _tensors.compact_mask(np.array([[1, 0]], np.int64)).dtype == np.uint8
    assert _tensors.compact_mask(np.array([[2, 0]], np.int64)).dtype == np.int64  # not a 0/1 mask: unchanged
    assert _tensors.compact_mask(np.array([[1.0, 0.5]], np.float32)).dtype == np.float32


@pytest.mark.no_server
def test_client_rejects_bad_url():
    with pytest.raises(ValueError):
        Client("ftp://example/")


@pytest.mark.no_server
def test_unreachable_server_is_a_connection_error():
    from finegrain import FineGrainConnectionError
    from conftest import free_port

    c = Client(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(FineGrainConnectionError) as e:
        c.health()
    assert e.value.status is None


# ---------------------------------------------------------------------------- routes


def test_health_and_methods(client):
    assert client.health()["status"] == "ok"
    methods = client.methods()
    by_name = {m["name"]: m for m in methods if m["kind"] == "estimator"}
    for name in ("grpo", "gae", "rloo"):
        assert name in by_name
    assert {p["name"] for p in by_name["gae"]["params"]} >= {"gamma", "lam"}
    assert set(client.estimators()) == set(by_name)


def test_rollouts_grpo_matches_reference(client):
    rollouts = [
        {"group": "a", "tokens": [1, 2, 3], "reward": 1.0},
        {"group": "a", "tokens": [4, 5], "reward": 0.0},
        {"group": "a", "tokens": [6], "reward": 0.5},
        {"group": 7, "tokens": [1, 1], "reward": 2.0},  # singleton, integer group
        {"group": "b", "tokens": [9, 9, 9, 9], "reward": -1.0, "mask": [1, 0, 1, 1]},
        {"group": "b", "tokens": [3], "reward": 1.0},
    ]
    out = client.advantages("grpo", rollouts)
    assert len(out) == len(rollouts)
    expect = grpo_reference([r["reward"] for r in rollouts], [r["group"] for r in rollouts])
    for r, o, e in zip(rollouts, out, expect):
        assert o["tokens"] == r["tokens"] and o["group"] == r["group"]
        mask = np.asarray(r.get("mask", [1] * len(r["tokens"])))
        np.testing.assert_allclose(o["advantages"], e * mask, rtol=1e-6, atol=1e-7)
    assert isinstance(client.last_diagnostics, dict)


def test_rollouts_params_are_passed(client):
    rollouts = [{"group": "a", "tokens": [1], "reward": r} for r in (1.0, 0.0, 0.0)]
    out = client.advantages("grpo", rollouts, params={"norm_adv_by_std_in_grpo": False})
    np.testing.assert_allclose([o["advantages"][0] for o in out], [2 / 3, -1 / 3, -1 / 3], rtol=1e-9)


@pytest.mark.parametrize("estimator,params", [("grpo", {}), ("rloo", {}), ("gae", {"gamma": 0.99, "lam": 0.95})])
def test_padded_json_and_base64_agree(client, estimator, params):
    groups, mask, tlr, *_rest, values = padded_batch(1)
    kw = {"values": values} if estimator == "gae" else {}
    a64, r64 = client.advantages_padded(estimator, tlr, mask, index=groups, params=params, encoding="base64", **kw)
    aj, rj = client.advantages_padded(estimator, tlr, mask, index=groups, params=params, encoding="json", **kw)
    af, rf = client.advantages_padded(estimator, tlr, mask, index=groups, params=params, encoding="framed", **kw)
    assert a64.dtype == np.float32 and a64.shape == tlr.shape and r64.shape == tlr.shape
    np.testing.assert_allclose(a64, aj, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(r64, rj, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(af, a64)   # the same float32 values, raw instead of base64
    np.testing.assert_array_equal(rf, r64)


def test_framed_is_the_default_and_carries_dense_tensors_both_ways(client, monkeypatch):
    groups, mask, tlr, *_rest, values = padded_batch(3)
    seen = {}
    inner = client._post_framed

    def spy(path, body, frame):
        doc, answer_frame = inner(path, body, frame)
        seen.update(body=body, frame=frame, doc=doc, answer_bytes=len(answer_frame))
        return doc, answer_frame

    monkeypatch.setattr(client, "_post_framed", spy)
    adv, ret = client.advantages_padded("gae", tlr, mask, index=groups, values=values, params={"gamma": 0.99, "lam": 0.9})
    assert "frame_offset" in seen["body"]["verl"]["values"] and seen["frame"].size == values.astype(np.float32).nbytes
    assert "frame_offset" in seen["doc"]["advantages"] and "frame_offset" in seen["doc"]["returns"]
    assert seen["answer_bytes"] == 2 * 4 * mask.size
    a64, r64 = client.advantages_padded("gae", tlr, mask, index=groups, values=values, params={"gamma": 0.99, "lam": 0.9},
                                        encoding="base64")
    np.testing.assert_array_equal(adv, a64)
    np.testing.assert_array_equal(ret, r64)


def test_padded_grpo_matches_reference_and_rollouts_form(client):
    groups, mask, tlr, outcome, lengths, _ = padded_batch(2)
    adv, ret = client.advantages_padded("grpo", tlr, mask, index=np.array(groups, dtype=object))
    expect = grpo_reference(outcome, groups)[:, None] * mask
    np.testing.assert_allclose(adv, expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(adv, ret)
    rollouts = [{"group": g, "tokens": [0] * int(n), "reward": float(o)} for g, n, o in zip(groups, lengths, outcome)]
    for row, o in zip(adv, client.advantages("grpo", rollouts)):
        np.testing.assert_allclose(row[: len(o["advantages"])], o["advantages"], rtol=1e-5, atol=1e-6)


def test_padded_gae_matches_rollouts_form(client):
    groups, mask, tlr, outcome, lengths, values = padded_batch(3)
    p = {"gamma": 0.9, "lam": 0.8}
    adv, ret = client.advantages_padded("gae", tlr, mask, index=groups, values=values, params=p)
    rollouts = [{"group": g, "tokens": [0] * int(n), "reward": float(o), "values": values[i, :n].tolist()}
                for i, (g, n, o) in enumerate(zip(groups, lengths, outcome))]
    for i, o in enumerate(client.advantages("gae", rollouts, params=p)):
        n = int(lengths[i])
        np.testing.assert_allclose(adv[i, :n], o["advantages"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ret[i, :n], o["returns"], rtol=1e-5, atol=1e-5)


def test_padded_index_defaults_to_one_group_per_row(client):
    _, mask, tlr, outcome, _, _ = padded_batch(4)
    adv, _ = client.advantages_padded("grpo", tlr, mask)  # singleton groups: advantage = raw score
    np.testing.assert_allclose(adv, outcome[:, None] / (1 + 1e-6) * mask, rtol=1e-6, atol=1e-7)


def test_padded_accepts_bool_and_float_masks_and_int_index(client):
    groups, mask, tlr, *_ = padded_batch(5)
    ids = {g: i for i, g in enumerate(sorted(set(groups)))}
    int_index = np.array([ids[g] for g in groups], dtype=np.int64)
    ref, _ = client.advantages_padded("grpo", tlr, mask, index=groups)
    for m in (mask.astype(bool), mask.astype(np.float32), mask.astype(np.uint8), mask.astype(np.int32)):
        adv, _ = client.advantages_padded("grpo", tlr, m, index=int_index)
        np.testing.assert_allclose(adv, ref, rtol=1e-6, atol=1e-7)
    adv, _ = client.advantages_padded("grpo", tlr.astype(np.float64), mask, index=groups)
    np.testing.assert_allclose(adv, ref, rtol=1e-6, atol=1e-7)


def test_losses_vanilla_matches_hand_computation(client):
    lp = np.array([-1.0, -2.0, -0.5])
    old = np.array([-1.1, -2.0, -0.45])
    adv = np.array([1.0, 1.0, -0.5])
    out = client.losses("vanilla", [{"group": "a", "tokens": [1, 2, 3], "reward": 1.0, "logprobs": lp.tolist(),
                                     "old_logprobs": old.tolist(), "advantages": adv.tolist(), "mask": [1, 1, 1]}])
    ratio = np.exp(lp - old)  # all inside [0.8, 1.2]: no clipping
    np.testing.assert_allclose(out["loss"], np.mean(-adv * ratio), rtol=1e-9)
    np.testing.assert_allclose(out["gradients"][0], -adv * ratio / 3, rtol=1e-9)
    assert "pg_clipfrac" in out["metrics"]


def test_rewards_route(client):
    out = client.rewards("math_answer", ["so the answer is 42", "it is 41", "x = 3.50", "no number"],
                         ["42", "42", "3.5", "1"])
    assert out == [1.0, 0.0, 1.0, 0.0]
    assert client.rewards("exact_match", ["abc", "abd"], ["abc", "abc"]) == [1.0, 0.0]
    assert client.last_outcomes == ["ok", "ok"]
    assert client.rewards("exact_match", ["abc"], ["abc"], item_timeout_s=2.5) == [1.0]
    with pytest.raises(FineGrainError) as e:
        client.rewards("exact_match", ["abc"], ["abc"], item_timeout_s=-1)
    assert e.value.status == 400 and "item_timeout_s" in str(e.value)


def test_keep_alive_reuses_one_connection(client):
    for _ in range(5):
        client.health()
        client.advantages("grpo", [{"group": "a", "tokens": [1], "reward": 1.0}])
    assert client.connections_opened == 1


def test_reconnects_after_close(client):
    client.health()
    client.close()
    client.health()
    assert client.connections_opened == 2


def test_error_carries_status_and_message(client):
    with pytest.raises(FineGrainError) as e:
        client.advantages("no_such_estimator", [{"group": "a", "tokens": [1], "reward": 1.0}])
    assert e.value.status == 404 and "no_such_estimator" in e.value.message
    # the connection stays usable after an error answer
    assert client.health()["status"] == "ok"


def test_response_encoding_defaults_to_the_inputs(client):
    """No "encoding" field: base64 answer if any input tensor was base64, else nested lists."""
    tlr = np.array([[0.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    mask = [[1, 1], [1, 0]]
    as_json = client.request("POST", "/v1/advantages", {"estimator": "grpo", "verl": {
        "token_level_rewards": tlr.tolist(), "response_mask": mask, "index": ["a", "a"]}})
    assert isinstance(as_json["advantages"], list) and isinstance(as_json["returns"], list)
    as_b64 = client.request("POST", "/v1/advantages", {"estimator": "grpo", "verl": {
        "token_level_rewards": _tensors.encode(tlr), "response_mask": mask, "index": ["a", "a"]}})
    assert as_b64["advantages"]["dtype"] == "float32" and as_b64["advantages"]["shape"] == [2, 2]
    np.testing.assert_allclose(_tensors.decode(as_b64["advantages"]), _tensors.decode(as_json["advantages"]),
                               rtol=1e-6)


def test_returns_equal_to_advantages_travel_once(client):
    """GRPO's returns are its advantages: with ``omit_returns_if_advantages`` the answer holds one tensor and
    the client rebuilds the pair; GAE's differ and both come back."""
    tlr = np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    mask = np.array([[1, 1], [1, 0], [1, 0]], dtype=np.uint8)
    body = {"estimator": "grpo", "omit_returns_if_advantages": True, "verl": {
        "token_level_rewards": _tensors.encode(tlr), "response_mask": _tensors.encode(mask), "index": ["a", "a", "a"]}}
    doc = client.request("POST", "/v1/advantages", body)
    assert "returns" not in doc and doc["returns_are_advantages"] is True
    adv, ret = client.advantages_padded("grpo", tlr, mask, index=["a", "a", "a"])
    np.testing.assert_array_equal(adv, ret)
    np.testing.assert_allclose(adv, _tensors.decode(doc["advantages"]))
    values = np.array([[0.5, 0.2], [0.1, 0.0], [0.3, 0.0]], dtype=np.float32)
    adv, ret = client.advantages_padded("gae", tlr, mask, values=values, params={"gamma": 1.0, "lam": 1.0})
    assert not np.allclose(adv, ret)


def test_short_forms_are_lossless_and_chosen_only_when_smaller(client):
    """Sparse rewards and a lengths mask go out only when exact and smaller; the server reads them as the
    dense tensors (same advantages), and per-row answers expand back with the mask."""
    rng = np.random.default_rng(0)
    B, R = 8, 32
    lengths = rng.integers(1, R + 1, size=B)
    mask = (np.arange(R)[None, :] < lengths[:, None]).astype(np.int64)
    tlr = np.zeros((B, R), dtype=np.float32)
    tlr[np.arange(B), lengths - 1] = rng.integers(0, 2, size=B)
    short_r, short_m = _tensors.encode_short(tlr), _tensors.encode_mask_short(mask)
    assert "indices" in short_r and "lengths" in short_m
    assert "lengths" in _tensors.encode_mask_short(mask.astype(np.float32))    # float 0/1 masks too
    dense = rng.normal(size=(B, R)).astype(np.float32)
    assert "indices" not in _tensors.encode_short(dense)          # dense data stays dense
    holes = mask.copy(); holes[0, 0] = 0
    assert "lengths" not in _tensors.encode_mask_short(holes)       # a mask with holes stays a mask
    index = [str(i // 4) for i in range(B)]
    adv_short, _ = client.advantages_padded("grpo", tlr, mask, index=index)
    as_dense = {"estimator": "grpo", "encoding": "base64", "verl": {
        "token_level_rewards": _tensors.encode(tlr), "response_mask": _tensors.encode(mask.astype(np.uint8)), "index": index}}
    adv_dense = _tensors.decode(client.request("POST", "/v1/advantages", as_dense)["advantages"])
    np.testing.assert_array_equal(adv_short, adv_dense)
    rv = {"dtype": "float32", "shape": [2, 3], "row_values": _tensors.encode(np.array([0.5, -2.0], dtype=np.float32))["data"]}
    np.testing.assert_array_equal(_tensors.decode(rv, mask=np.array([[1, 1, 0], [1, 0, 0]])),
                                  np.array([[0.5, 0.5, 0], [-2, 0, 0]], dtype=np.float32))
    with pytest.raises(ValueError):
        _tensors.decode(rv)


def test_jsonl_body_matches_the_rollouts_form_and_the_cli(client, tmp_path):
    rollouts = [
        {"group": "a", "tokens": [1, 2, 3], "reward": 1.0, "id": "first"},
        {"group": "a", "tokens": [4, 5], "reward": 0.0},
        {"group": 7, "tokens": [1, 1], "reward": 2.0, "mask": [1, 0]},
    ]
    text = "\n".join(json.dumps(r) for r in rollouts) + "\n"
    answer = client.advantages_jsonl("grpo", text, params={"norm_adv_by_std_in_grpo": False})
    lines = [json.loads(l) for l in answer.decode().splitlines() if l.strip()]
    as_objects = client.advantages("grpo", rollouts, params={"norm_adv_by_std_in_grpo": False})
    assert lines == as_objects
    # Hand-worked: group a has mean 0.5 -> +0.5 / -0.5 without the std; a group of one has mean 0 in
    # verl, so it keeps its reward 2 (times the mask).
    np.testing.assert_allclose(lines[0]["advantages"], [0.5] * 3)
    np.testing.assert_allclose(lines[1]["advantages"], [-0.5] * 2)
    np.testing.assert_allclose(lines[2]["advantages"], [2.0, 0.0])
    assert isinstance(client.last_diagnostics, dict)
    # A file path works too, and the bytes equal what `finegrain advantages` writes for that file.
    path = tmp_path / "r.jsonl"
    path.write_text(text)
    from conftest import finegrain_bin
    cli = subprocess.run([str(finegrain_bin()), "advantages", "--estimator", "grpo",
                          "--param", "norm_adv_by_std_in_grpo=false", "--input", str(path)],
                         check=True, capture_output=True).stdout
    assert client.advantages_jsonl("grpo", path, params={"norm_adv_by_std_in_grpo": False}) == cli


def test_jsonl_errors_name_the_line(client):
    with pytest.raises(FineGrainError) as e:
        client.advantages_jsonl("grpo", '{"group": "a", "tokens": [1], "reward": 1}\n{oops\n')
    assert e.value.status == 400 and "line 2" in str(e.value)
    with pytest.raises(FineGrainError) as e:
        client.advantages_jsonl("no_such_estimator", '{"group": "a", "tokens": [1], "reward": 1}\n')
    assert e.value.status == 404


def test_unix_socket_server_and_client(client, tmp_path):
    """``finegrain serve --unix PATH`` and ``Client("unix:PATH")``: same answers as over TCP, and the
    socket file is removed when the server drains on SIGTERM."""
    import time
    from conftest import finegrain_bin
    sock = tmp_path / "fg.sock"
    log = open(tmp_path / "serve-unix.log", "wb")
    proc = subprocess.Popen([str(finegrain_bin()), "serve", "--unix", str(sock)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not sock.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert sock.exists(), (tmp_path / "serve-unix.log").read_text()
        rollouts = [{"group": "a", "tokens": [1, 2], "reward": 1.0}, {"group": "a", "tokens": [3], "reward": 0.0}]
        for url in (f"unix:{sock}", f"unix://{sock}"):
            with Client(url) as uds:
                assert uds.url == f"unix:{sock}"
                assert uds.health()["status"] == "ok"
                assert uds.advantages("grpo", rollouts) == client.advantages("grpo", rollouts)
                adv, ret = uds.advantages_padded("grpo", np.array([[0, 1.0], [0, 0]]), np.array([[1, 1], [1, 0]]),
                                                 index=["a", "a"])
                np.testing.assert_allclose(adv, client.advantages_padded("grpo", np.array([[0, 1.0], [0, 0]]),
                                                                         np.array([[1, 1], [1, 0]]), index=["a", "a"])[0])
        with pytest.raises(ValueError):
            Client("unix:")
        # A second server on the same live socket is refused (the stale-file cleanup never steals it).
        second = subprocess.run([str(finegrain_bin()), "serve", "--unix", str(sock)], capture_output=True, timeout=60)
        assert second.returncode != 0 and b"already listens" in second.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    assert proc.returncode == 0
    assert not sock.exists()
