#!/usr/bin/python3
"""One Stories110M transformer layer forward in NumPy (fp32), the reference for benchmark 2.

The same math as ane.stories.layer_forward (llama2.c run.c): RMSNorm, Q/K/V projections, RoPE
on interleaved pairs, causal softmax attention per head, output projection, residual, RMSNorm,
SwiGLU FFN (w1, w3, silu, w2), residual. Activations are kept channels-first [dim, seq], the
layout of the MIL kernel, so every projection is one GEMM W[out, in] @ x[in, seq] through the
BLAS NumPy links (OpenBLAS on Debian: the same library the CPU backend uses).

Inputs: --dir DIR with x.npy ([1, dim, 1, seq] or [dim, seq]) and wq, wk, wv, wo, w1, w2, w3,
rms_att, rms_ffn .npy (any float dtype; W[out, in] as in ane.stories), as written by
ane.stories.save_layer_npy; or --seed N to generate them here (normal, std 0.02; rms 1 + that).
Prints one JSON line: {"ms_per_iter", "iters", "checksum" (sum of y), "abs_checksum"
(sum of |y|), "dim", "hidden", "heads", "seq", "rope", "blas"}. --out PATH saves y as
[1, dim, 1, seq] fp32 .npy for an element-wise comparison.

Run with /usr/bin/python3 (python3-numpy). Example:
  /usr/bin/python3 scripts/bench_layer_ref.py --seed 1 --iters 20

Compatibility: a single bare integer argument (`bench_layer_ref.py 10`, what scripts/bench.lua
calls today) times that many iterations of the seeded Stories110M layer without RoPE (the form
bench.lua builds) and prints "best_ms mean_ms".
"""
import argparse
import json
import os
import sys
import time

import numpy as np

NAMES = ["wq", "wk", "wv", "wo", "w1", "w2", "w3", "rms_att", "rms_ffn"]


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dir", help="directory with x.npy and the weight .npy files")
    src.add_argument("--seed", type=int, help="generate weights and input from this seed")
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--eps", type=float, default=1e-5)
    ap.add_argument("--theta", type=float, default=10000.0)
    ap.add_argument("--no-rope", action="store_true", help="leave RoPE out (cfg.rope = false)")
    ap.add_argument("--iters", type=int, default=10, help="timed iterations (default 10)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", help="save y here as [1, dim, 1, seq] fp32 .npy")
    a = ap.parse_args(argv)
    if a.dim % a.heads or (not a.no_rope and (a.dim // a.heads) % 2):
        ap.error("dim must split into heads (with an even head_dim for RoPE)")
    if a.iters < 1 or a.warmup < 0:
        ap.error("--iters must be >= 1 and --warmup >= 0")
    return a


def load(a):
    """Weights and input as contiguous fp32 arrays; shapes checked against the flags."""
    D, H, S = a.dim, a.hidden, a.seq
    want = {"wq": (D, D), "wk": (D, D), "wv": (D, D), "wo": (D, D), "w1": (H, D),
            "w3": (H, D), "w2": (D, H), "rms_att": (D,), "rms_ffn": (D,)}
    if a.seed is not None:
        rng = np.random.default_rng(a.seed)
        w = {}
        for k in NAMES:
            v = rng.normal(0.0, 0.02, want[k])
            w[k] = (v + 1.0 if k.startswith("rms") else v).astype(np.float16).astype(np.float32)
        x = rng.normal(0.0, 1.0, (D, S)).astype(np.float16).astype(np.float32)
        return w, x
    w = {}
    for k in NAMES:
        path = os.path.join(a.dir, k + ".npy")
        v = np.load(path)
        if v.shape != want[k]:
            sys.exit(f"bench_layer_ref.py: {path} has shape {v.shape}, expected {want[k]}")
        w[k] = np.ascontiguousarray(v, dtype=np.float32)
    path = os.path.join(a.dir, "x.npy")
    x = np.load(path)
    if x.size != D * S:
        sys.exit(f"bench_layer_ref.py: {path} has shape {x.shape}, expected [1, {D}, 1, {S}]")
    return w, np.ascontiguousarray(x.reshape(D, S), dtype=np.float32)


class Layer:
    """Precomputed constants (RoPE tables, mask) and the forward pass."""

    def __init__(self, a, w):
        self.a, self.w = a, w
        D, S = a.dim, a.seq
        self.nh, self.hd = a.heads, D // a.heads
        i = np.arange(self.hd // 2, dtype=np.float64)
        pos = np.arange(S, dtype=np.float64)
        ang = pos[None, :] / a.theta ** (2.0 * i[:, None] / self.hd)  # [hd/2, S]
        self.cos = np.cos(ang).astype(np.float32)
        self.sin = np.sin(ang).astype(np.float32)
        self.mask = np.triu(np.full((S, S), -np.inf, dtype=np.float32), 1)  # [query, key]
        self.scale = np.float32(1.0 / np.sqrt(self.hd))
        self.rms_att = w["rms_att"][:, None]
        self.rms_ffn = w["rms_ffn"][:, None]

    def rmsnorm(self, x, wcol):
        ms = np.einsum("cs,cs->s", x, x) / np.float32(x.shape[0])
        return x * (1.0 / np.sqrt(ms + np.float32(self.a.eps)))[None, :] * wcol

    def rope(self, t):
        """t: [dim, S] as heads x (pairs of 2) x S; rotate pair (2i, 2i+1) by pos * theta_i."""
        p = t.reshape(self.nh, self.hd // 2, 2, -1)
        e, o = p[:, :, 0, :], p[:, :, 1, :]
        out = np.empty_like(p)
        out[:, :, 0, :] = e * self.cos - o * self.sin
        out[:, :, 1, :] = e * self.sin + o * self.cos
        return out.reshape(t.shape)

    def forward(self, x):
        w, S = self.w, self.a.seq
        xn = self.rmsnorm(x, self.rms_att)
        q, k, v = w["wq"] @ xn, w["wk"] @ xn, w["wv"] @ xn
        if not self.a.no_rope:
            q, k = self.rope(q), self.rope(k)
        qh = q.reshape(self.nh, self.hd, S)  # [H, hd, S]
        kh = k.reshape(self.nh, self.hd, S)
        vh = v.reshape(self.nh, self.hd, S)
        sc = np.matmul(qh.transpose(0, 2, 1), kh) * self.scale + self.mask  # [H, Sq, Sk]
        sc -= sc.max(axis=-1, keepdims=True)
        np.exp(sc, out=sc)
        sc /= sc.sum(axis=-1, keepdims=True)
        att = np.matmul(vh, sc.transpose(0, 2, 1)).reshape(-1, S)  # [H, hd, Sq] -> [dim, S]
        x2 = x + w["wo"] @ att
        x2n = self.rmsnorm(x2, self.rms_ffn)
        h1, h3 = w["w1"] @ x2n, w["w3"] @ x2n
        gate = h1 / (1.0 + np.exp(-h1)) * h3
        return x2 + w["w2"] @ gate


def blas_library():
    """The BLAS shared object actually mapped into this process (after a GEMM ran)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if ".so" in line}
    except OSError:
        return "unknown"
    for key in ("libopenblas", "libblas", "blas"):  # liblapack also says blas in its path
        hits = sorted(p for p in libs if key in os.path.basename(p).lower())
        if hits:
            return hits[0]
    return "unknown"


def main(argv):
    legacy = len(argv) == 1 and argv[0].isdigit()
    if legacy:
        argv = ["--seed", "1", "--no-rope", "--warmup", "1", "--iters", argv[0]]
    a = parse_args(argv)
    w, x = load(a)
    layer = Layer(a, w)
    for _ in range(a.warmup):
        layer.forward(x)
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        y = layer.forward(x)
        times.append((time.perf_counter() - t0) * 1000.0)
    ms = sum(times) / len(times)
    if legacy:
        print("%.3f %.3f" % (min(times), ms))
        return 0
    if a.out:
        np.save(a.out, y.reshape(1, a.dim, 1, a.seq).astype(np.float32))
    y64 = y.astype(np.float64)
    print(json.dumps({
        "ms_per_iter": round(ms, 4), "best_ms": round(min(times), 4), "iters": a.iters,
        "checksum": float(y64.sum()), "abs_checksum": float(np.abs(y64).sum()),
        "dim": a.dim, "hidden": a.hidden, "heads": a.heads, "seq": a.seq,
        "rope": not a.no_rope, "blas": blas_library(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
