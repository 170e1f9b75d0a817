"""OpenRLHF remote reward protocol: POST /v1/openrlhf/reward, and finegrain.openrlhf.reward_func."""

from __future__ import annotations

import http.client
import importlib.util
import json

import pytest

from finegrain import openrlhf

PROMPTS = ["Q: What is 40 + 2?\nA:", "Q: What is 6 * 7?\nA:", "Q: Halve 7.\nA:", "Q: Repeat the number 9.\nA:",
           "Q: What is 2 - 5?\nA:"]
RESPONSES = [" 40 + 2 = 42", " I think it is 41", " 7 / 2 = 3.50", " I cannot do that", " The answer is -3."]
LABELS = ["42", "42", "3.5", "9", "-3"]
EXPECT = [1.0, 0.0, 1.0, 0.0, 1.0]  # the 4th: the prompt holds 9 but the response does not (prefix stripped)


def post(port, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    status, ctype, text = resp.status, resp.getheader("Content-Type", ""), resp.read().decode()
    conn.close()
    return status, ctype, json.loads(text)


def test_route_shape_and_values(server):
    body = {"query": [p + r for p, r in zip(PROMPTS, RESPONSES)], "prompts": PROMPTS, "labels": LABELS}
    status, ctype, doc = post(server.port, openrlhf.ROUTE, body)
    assert status == 200 and "application/json" in ctype
    assert set(doc) >= {"rewards", "scores", "extra_logs"}
    assert doc["rewards"] == EXPECT
    assert len(doc["scores"]) == len(EXPECT) and all(0.0 <= s <= 1.0 for s in doc["scores"])
    assert doc["scores"] == doc["rewards"]
    assert isinstance(doc["extra_logs"], dict)
    for v in doc["extra_logs"].values():
        assert isinstance(v, list) and len(v) == len(EXPECT)


def test_route_single_sample_requests(server):
    # OpenRLHF's current executor sends one sample per request
    for p, r, lab, e in zip(PROMPTS, RESPONSES, LABELS, EXPECT):
        status, _, doc = post(server.port, openrlhf.ROUTE, {"query": [p + r], "prompts": [p], "labels": [lab]})
        assert status == 200 and doc["rewards"] == [e]


def test_route_rejects_mismatched_lengths(server):
    status, _, doc = post(server.port, openrlhf.ROUTE, {"query": ["a 1", "b 2"], "prompts": ["a"], "labels": ["1"]})
    assert status == 400 and "error" in doc


def test_reward_func(server):
    out = openrlhf.reward_func([p + r for p, r in zip(PROMPTS, RESPONSES)], PROMPTS, LABELS, extra_kw=1)
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert [float(x) for x in out["rewards"]] == EXPECT
    assert [float(x) for x in out["scores"]] == EXPECT
    if importlib.util.find_spec("torch") is not None:
        import torch

        assert isinstance(out["rewards"], torch.Tensor) and out["rewards"].dtype == torch.float32


def test_reward_func_file_loads_by_path(server):
    # OpenRLHF loads `--reward.remote_url path.py` with spec_from_file_location, outside the package
    spec = importlib.util.spec_from_file_location("reward_func_module", openrlhf.__file__)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.reward_func([PROMPTS[0] + RESPONSES[0]], [PROMPTS[0]], [LABELS[0]])
    assert [float(x) for x in out["rewards"]] == [1.0]


@pytest.mark.no_server
def test_remote_url(monkeypatch):
    monkeypatch.setenv("FINEGRAIN_URL", "http://fg.example:9000/")
    assert openrlhf.remote_url() == "http://fg.example:9000/v1/openrlhf/reward"
    monkeypatch.delenv("FINEGRAIN_URL")
    assert openrlhf.remote_url() == "http://127.0.0.1:8321/v1/openrlhf/reward"
