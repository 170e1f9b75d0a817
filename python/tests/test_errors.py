"""Error contract: JSON {"error": message} with 400 / 401 / 404 / 413, surfaced as FineGrainError."""

from __future__ import annotations

import http.client
import json

import numpy as np
import pytest

from conftest import TOKEN
from finegrain import Client, FineGrainError

ROLLOUTS = [{"group": "a", "tokens": [1, 2], "reward": 1.0}, {"group": "a", "tokens": [3], "reward": 0.0}]


def raw(url_port, method, path, body=None, headers=None):
    """(status, decoded JSON or text) of one raw request."""
    conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=30)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    try:
        return resp.status, json.loads(text)
    except ValueError:
        return resp.status, text


def test_unknown_estimator_is_404_naming_it(client, server):
    with pytest.raises(FineGrainError) as e:
        client.advantages("frobnicate_adv", ROLLOUTS)
    assert e.value.status == 404
    assert "frobnicate_adv" in e.value.message
    status, doc = raw(server.port, "POST", "/v1/advantages", {"estimator": "frobnicate_adv", "rollouts": ROLLOUTS})
    assert status == 404 and isinstance(doc, dict) and "frobnicate_adv" in doc["error"]


def test_unknown_estimator_padded_is_404(client):
    with pytest.raises(FineGrainError) as e:
        client.advantages_padded("frobnicate_adv", [[0.0, 1.0]], [[1, 1]])
    assert e.value.status == 404 and "frobnicate_adv" in e.value.message


def test_unknown_loss_is_404(client):
    with pytest.raises(FineGrainError) as e:
        client.losses("frobnicate_loss", [{"group": "a", "tokens": [1], "reward": 1.0, "logprobs": [-1.0],
                                           "old_logprobs": [-1.0], "advantages": [1.0]}])
    assert e.value.status == 404 and "frobnicate_loss" in e.value.message


def test_nan_reward_rollouts_is_400(client):
    with pytest.raises(FineGrainError) as e:
        client.advantages("grpo", [{"group": "a", "tokens": [1], "reward": float("nan")}, ROLLOUTS[1]])
    assert e.value.status == 400 and e.value.message


@pytest.mark.parametrize("encoding", ["framed", "base64", "json"])
def test_nan_reward_padded_is_400(client, encoding):
    tlr = np.array([[0.0, np.nan], [0.0, 1.0]], dtype=np.float32)
    with pytest.raises(FineGrainError) as e:
        client.advantages_padded("grpo", tlr, np.ones((2, 2), np.int64), index=["a", "a"], encoding=encoding)
    assert e.value.status == 400 and e.value.message


def test_bad_param_is_400_naming_it(client):
    with pytest.raises(FineGrainError) as e:
        client.advantages("grpo", ROLLOUTS, params={"epsilon": "not a number"})
    assert e.value.status == 400 and "epsilon" in e.value.message


def test_malformed_tensor_is_400(client, server):
    body = {"estimator": "grpo", "verl": {
        "token_level_rewards": {"dtype": "float32", "shape": [2, 3], "data": "AAAAAA=="},  # 4 bytes, needs 24
        "response_mask": [[1, 1, 1], [1, 1, 1]]}}
    status, doc = raw(server.port, "POST", "/v1/advantages", body)
    assert status == 400 and "error" in doc


def test_shape_mismatch_is_400(client):
    with pytest.raises(FineGrainError) as e:
        client.advantages_padded("grpo", np.zeros((2, 3), np.float32), np.ones((2, 4), np.int64))
    assert e.value.status == 400


def test_not_json_is_400(server):
    status, doc = raw(server.port, "POST", "/v1/advantages", b"{not json")
    assert status == 400 and "error" in doc


def test_wrong_or_missing_token_is_401(token_server):
    bad = Client(token_server.url, token="wrong-token")
    with pytest.raises(FineGrainError) as e:
        bad.advantages("grpo", ROLLOUTS)
    assert e.value.status == 401 and e.value.message
    with pytest.raises(FineGrainError) as e:
        Client(token_server.url).methods()
    assert e.value.status == 401
    good = Client(token_server.url, token=TOKEN)
    assert len(good.advantages("grpo", ROLLOUTS)) == 2
    assert good.methods()
    # /healthz needs no token (load balancers probe it)
    assert Client(token_server.url).health()["status"] == "ok"


def test_body_over_limit_is_413(token_server):
    good = Client(token_server.url, token=TOKEN)
    big = [{"group": f"g{i // 4}", "tokens": list(range(200)), "reward": 1.0} for i in range(2000)]  # > 1 MiB
    with pytest.raises(FineGrainError) as e:
        good.advantages("grpo", big)
    assert e.value.status == 413
    assert good.health()["status"] == "ok"
