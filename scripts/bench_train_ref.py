#!/usr/bin/env python3
"""PyTorch reference for scripts/bench_train.lua (benchmark only; never in CI).

Trains a llama2.c-shaped model (RMSNorm, RoPE, SwiGLU, tied classifier) with AdamW for a few
steps on random tokens and prints one JSON line: ms per step (median and best), tokens/s, the
thread count and the torch version. Run it the way a careful user does (the Lua script sets
this up): OMP_WAIT_POLICY=passive and jemalloc with decay disabled via LD_PRELOAD.
"""
import argparse, json, math, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(s, dim, hidden, heads, kv_heads):
        super().__init__()
        s.h, s.kv, s.hd = heads, kv_heads, dim // heads
        s.wq = nn.Linear(dim, dim, bias=False)
        s.wk = nn.Linear(dim, kv_heads * s.hd, bias=False)
        s.wv = nn.Linear(dim, kv_heads * s.hd, bias=False)
        s.wo = nn.Linear(dim, dim, bias=False)
        s.w1 = nn.Linear(dim, hidden, bias=False)
        s.w2 = nn.Linear(hidden, dim, bias=False)
        s.w3 = nn.Linear(dim, hidden, bias=False)
        s.n1 = nn.Parameter(torch.ones(dim))
        s.n2 = nn.Parameter(torch.ones(dim))

    @staticmethod
    def rms(x, w, eps=1e-5):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def forward(s, x, cos, sin):
        B, S, D = x.shape
        h = s.rms(x, s.n1)
        q = s.wq(h).view(B, S, s.h, s.hd)
        k = s.wk(h).view(B, S, s.kv, s.hd)
        v = s.wv(h).view(B, S, s.kv, s.hd)

        def rope(t):
            t2 = t.float().reshape(*t.shape[:-1], -1, 2)
            a, b = t2[..., 0], t2[..., 1]
            return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)

        q, k = rope(q), rope(k)
        if s.kv != s.h:
            k = k.repeat_interleave(s.h // s.kv, dim=2)
            v = v.repeat_interleave(s.h // s.kv, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, S, hd]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(s.hd))
        mask = torch.ones(S, S, dtype=torch.bool).triu(1)
        o = att.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + s.wo(o.transpose(1, 2).reshape(B, S, D))
        h = s.rms(x, s.n2)
        return x + s.w2(F.silu(s.w1(h)) * s.w3(h))


class Model(nn.Module):
    def __init__(s, dim, hidden, layers, heads, kv_heads, vocab, seq):
        super().__init__()
        s.embed = nn.Embedding(vocab, dim)
        nn.init.normal_(s.embed.weight, std=0.02)
        s.blocks = nn.ModuleList(Block(dim, hidden, heads, kv_heads) for _ in range(layers))
        s.norm = nn.Parameter(torch.ones(dim))
        hd = dim // heads
        freqs = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.outer(torch.arange(seq).float(), freqs)  # [S, hd/2]
        s.register_buffer("cos", ang.cos()[None, :, None, :])
        s.register_buffer("sin", ang.sin()[None, :, None, :])

    def forward(s, tok, tgt):
        x = s.embed(tok)
        for b in s.blocks:
            x = b(x, s.cos, s.sin)
        x = Block.rms(x, s.norm)
        logits = x @ s.embed.weight.t()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), tgt.reshape(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--kv-heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    m = Model(a.dim, a.hidden, a.layers, a.heads, a.kv_heads, a.vocab, a.seq)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    g = torch.Generator().manual_seed(1)
    times = []
    for i in range(a.warmup + a.steps):
        tok = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=g)
        t0 = time.perf_counter()
        loss = m(tok[:, :-1], tok[:, 1:])
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if i >= a.warmup:
            times.append(dt * 1e3)
    ms = statistics.median(times)
    print(json.dumps({"ms_per_step": ms, "best_ms": min(times), "tokens_per_s": a.batch * a.seq / (ms / 1e3),
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "params": sum(p.numel() for p in m.parameters()), "loss": float(loss)}))


if __name__ == "__main__":
    main()
