#!/usr/bin/env python3
"""PyTorch peer of FineGrain's embedded-trainer GPT (Sources/FineGrainTrainer/Model).

Builds the same architecture (token + position embeddings, pre-LayerNorm blocks with fused-qkv causal
multi-head attention and a GELU(tanh) MLP of width 4d, final LayerNorm, LM head tied to the token
embedding) and times, on CPU with torch.set_num_threads(2):

  * forward + log-probs of given targets + backward (the RL update), tokens/s;
  * KV-cache sampling of `batch` rows from an 8-token prompt to `length` tokens, tokens/s;
  * bare sgemm (torch.mm) on the MLP shapes, GFLOP/s.

Same shapes as `ModelBenchmark.run(config: .small(), batch:, length:)`. Prints one JSON object.

    /work/main/.venv-peer/bin/python Benchmarks/torch_model_peer.py --batch 16 --length 64

FineGrain's side: `FINEGRAIN_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter ModelBenchmarkTests`
(prints `ModelBenchmark.report` for BLAS/our thread counts 2/2, 1/2, 2/1, 1/1). Run the two alternately:
on a shared 2-core machine single runs vary by +-30% or more (see ModelBenchmark's doc comment).
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.fc_proj = nn.Linear(4 * d, d)

    def attn(self, x, cache=None, pos=None):
        B, T, C = x.shape
        hs = C // self.heads
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.heads, hs).transpose(1, 2)  # [B, NH, T, hs]
        k = k.view(B, T, self.heads, hs).transpose(1, 2)
        v = v.view(B, T, self.heads, hs).transpose(1, 2)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # one new position against the cache
            kc, vc = cache
            kc[:, :, pos : pos + 1] = k
            vc[:, :, pos : pos + 1] = v
            y = F.scaled_dot_product_attention(q, kc[:, :, : pos + 1], vc[:, :, : pos + 1])
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)

    def forward(self, x, cache=None, pos=None):
        x = x + self.attn(self.ln_1(x), cache, pos)
        x = x + self.fc_proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))
        return x


class GPT(nn.Module):
    def __init__(self, vocab, context, d, layers, heads):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(context, d)
        self.h = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.heads = heads
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx, caches=None, pos=0):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(pos, pos + T))
        for i, blk in enumerate(self.h):
            x = blk(x, None if caches is None else caches[i], pos)
        return self.ln_f(x) @ self.wte.weight.t()  # tied head, [B, T, V]

    @torch.no_grad()
    def sample(self, prompts, max_new):
        B, P = prompts.shape
        d = self.wte.weight.shape[1]
        hs = d // self.heads
        maxT = P + max_new
        caches = [(torch.zeros(B, self.heads, maxT, hs), torch.zeros(B, self.heads, maxT, hs)) for _ in self.h]
        out = []
        tok = None
        for pos in range(P + max_new - 1):
            inp = prompts[:, pos : pos + 1] if pos < P else tok
            logits = self.forward(inp, caches, pos)[:, -1]
            if pos >= P - 1:
                logp = torch.log_softmax(logits, dim=-1)
                tok = torch.multinomial(logp.exp(), 1)
                out.append((tok, logp.gather(1, tok)))
        return out


def best_of(fn, repeats):
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=32)
    ap.add_argument("--context", type=int, default=96)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT(a.vocab, a.context, a.d, a.layers, a.heads)
    B, T = a.batch, a.length
    idx = torch.randint(0, a.vocab, (B, T))
    targets = torch.roll(idx, -1, dims=1)
    g = torch.full((B, T), 1.0 / (B * T))

    def fwd_bwd():
        model.zero_grad(set_to_none=False)
        logits = model(idx)
        lp = torch.log_softmax(logits.float(), dim=-1).gather(2, targets.unsqueeze(-1)).squeeze(-1)
        (lp * g).sum().backward()

    t_fb = best_of(fwd_bwd, a.repeats)
    P = min(8, T - 1)
    t_s = best_of(lambda: model.sample(idx[:, :P], T - P), max(1, a.repeats // 2))

    N, C, H = B * T, a.d, 4 * a.d
    x = torch.randn(N, C)
    w = torch.randn(H, C)
    t_mm = best_of(lambda: torch.mm(x, w.t()), 50)
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "threads": a.threads,
        "params": sum(p.numel() for p in model.parameters()),
        "batch": B, "length": T,
        "fwd_bwd_tokens_per_s": N / t_fb,
        "sample_tokens_per_s": B * (T - P) / t_s,
        "mm_fc_forward_gflops": 2 * N * H * C / t_mm / 1e9,
    }))


if __name__ == "__main__":
    main()
