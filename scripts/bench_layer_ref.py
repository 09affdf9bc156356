#!/usr/bin/python3
"""The Stories110M transformer layer forward of scripts/bench.lua, in NumPy (fp32, same BLAS).

Usage: bench_layer_ref.py [reps]  -> prints "best_ms mean_ms" for one forward at seq 256.
Layout as the MIL kernel: activations [C, S] (channels x positions), weights [out, in].
"""
import sys
import time

import numpy as np

DIM, HIDDEN, SEQ, HEADS = 768, 2048, 256, 12
HD = DIM // HEADS


def rmsnorm(x, w):
    return x * (np.mean(x * x, axis=0, keepdims=True) + 1e-5) ** -0.5 * w[:, None]


def layer(x, p, mask):
    h = rmsnorm(x, p["att"])
    q = (p["wq"] @ h).reshape(HEADS, HD, SEQ)
    k = (p["wk"] @ h).reshape(HEADS, HD, SEQ)
    v = (p["wv"] @ h).reshape(HEADS, HD, SEQ)
    s = np.matmul(q.transpose(0, 2, 1), k) * (1.0 / np.sqrt(HD)) + mask
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    s /= s.sum(axis=-1, keepdims=True)
    o = np.matmul(s, v.transpose(0, 2, 1))            # [H, S, HD]
    o = o.transpose(0, 2, 1).reshape(DIM, SEQ)
    x2 = x + p["wo"] @ o
    h2 = rmsnorm(x2, p["ffn"])
    a = p["w1"] @ h2
    b = p["w3"] @ h2
    g = a / (1.0 + np.exp(-a)) * b
    return x2 + p["w2"] @ g


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    rng = np.random.default_rng(1)
    f = np.float32
    p = {n: (rng.standard_normal(s) * 0.02).astype(f) for n, s in
         [("wq", (DIM, DIM)), ("wk", (DIM, DIM)), ("wv", (DIM, DIM)), ("wo", (DIM, DIM)),
          ("w1", (HIDDEN, DIM)), ("w3", (HIDDEN, DIM)), ("w2", (DIM, HIDDEN))]}
    p["att"] = np.ones(DIM, f)
    p["ffn"] = np.ones(DIM, f)
    mask = np.triu(np.full((SEQ, SEQ), -65504.0, f), 1)
    x = rng.standard_normal((DIM, SEQ)).astype(f)
    layer(x, p, mask)  # warm up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        layer(x, p, mask)
        times.append(time.perf_counter() - t0)
    print("%.3f %.3f" % (min(times) * 1e3, sum(times) / len(times) * 1e3))


if __name__ == "__main__":
    main()
