"""bench_llm_torch.py - the PyTorch side of scripts/bench_llm.lua (benchmark only).

Plain PyTorch Llama/Qwen2 inference on a Hugging Face model directory (config.json +
model.safetensors, fp32), read without the transformers or safetensors packages: prefill of the
prompt in one batched causal pass, then greedy decode one token at a time against a KV cache,
as `transformers` runs it (rotate-half RoPE on the HF q/k layout). Two threads
(torch.set_num_threads(2)), as run.c's OMP_NUM_THREADS=2.

    python3 scripts/bench_llm_torch.py MODEL_DIR PROMPT_LEN STEPS
prints one JSON line: {"prefill": tok/s, "decode": tok/s, "torch": version, "threads": n}
"""
import json
import math
import struct
import sys
import time

import numpy as np
import torch


def main():
    d, plen, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(2)
    cfg = json.load(open(d + "/config.json"))
    buf = open(d + "/model.safetensors", "rb").read()
    n = struct.unpack("<Q", buf[:8])[0]
    hdr = json.loads(buf[8:8 + n])
    base = 8 + n

    def T(name):
        e = hdr[name]
        a, b = e["data_offsets"]
        arr = np.frombuffer(buf, dtype=np.float32, count=(b - a) // 4, offset=base + a)
        return torch.from_numpy(arr.reshape(e["shape"]).copy())

    D, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    H, KVH = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd, G = D // H, H // KVH
    eps, theta = cfg.get("rms_norm_eps", 1e-5), cfg.get("rope_theta", 10000.0)
    maxpos = min(cfg.get("max_position_embeddings", 2048), plen + steps + 1)
    emb = T("model.embed_tokens.weight")
    norm = T("model.norm.weight")
    wcls = emb if cfg.get("tie_word_embeddings", True) else T("lm_head.weight")
    layers = []
    for l in range(L):
        p = "model.layers.%d." % l
        g = lambda k: T(p + k) if (p + k) in hdr else None
        layers.append(dict(
            ln1=g("input_layernorm.weight"), ln2=g("post_attention_layernorm.weight"),
            wq=g("self_attn.q_proj.weight"), wk=g("self_attn.k_proj.weight"),
            wv=g("self_attn.v_proj.weight"), wo=g("self_attn.o_proj.weight"),
            bq=g("self_attn.q_proj.bias"), bk=g("self_attn.k_proj.bias"), bv=g("self_attn.v_proj.bias"),
            w1=g("mlp.gate_proj.weight"), w3=g("mlp.up_proj.weight"), w2=g("mlp.down_proj.weight")))
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    fr = torch.outer(torch.arange(maxpos, dtype=torch.float32), inv)
    fr = torch.cat((fr, fr), -1)
    cos, sin = fr.cos(), fr.sin()
    kc = torch.zeros(L, KVH, maxpos, hd)
    vc = torch.zeros(L, KVH, maxpos, hd)

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def rot(x):
        return torch.cat((-x[..., hd // 2:], x[..., :hd // 2]), -1)

    def lin(x, w, b=None):
        y = x @ w.T
        return y + b if b is not None else y

    def forward(ids, pos):
        S = len(ids)
        x = emb[torch.tensor(ids)]
        c, s = cos[pos:pos + S], sin[pos:pos + S]
        Tn = pos + S
        mask = torch.full((S, Tn), float("-inf")).triu(pos + 1)
        for l, w in enumerate(layers):
            h = rms(x, w["ln1"])
            q = lin(h, w["wq"], w["bq"]).view(S, H, hd).transpose(0, 1)
            k = lin(h, w["wk"], w["bk"]).view(S, KVH, hd).transpose(0, 1)
            v = lin(h, w["wv"], w["bv"]).view(S, KVH, hd).transpose(0, 1)
            q = q * c + rot(q) * s
            k = k * c + rot(k) * s
            kc[l, :, pos:Tn] = k
            vc[l, :, pos:Tn] = v
            K, V = kc[l, :, :Tn], vc[l, :, :Tn]
            if G > 1:
                K, V = K.repeat_interleave(G, 0), V.repeat_interleave(G, 0)
            a = torch.softmax(q @ K.transpose(1, 2) / math.sqrt(hd) + mask, -1)
            x = x + lin((a @ V).transpose(0, 1).reshape(S, D), w["wo"])
            h = rms(x, w["ln2"])
            x = x + lin(torch.nn.functional.silu(lin(h, w["w1"])) * lin(h, w["w3"]), w["w2"])
        return rms(x[-1:], norm) @ wcls.T

    prompt = [1] + [3 + (i * 37) % (emb.shape[0] - 3) for i in range(2, plen + 1)]
    with torch.inference_mode():
        forward(prompt, 0)  # warm-up
        best_p = best_d = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            logits = forward(prompt, 0)
            best_p = min(best_p, time.perf_counter() - t0)
            tok = [1]
            t0 = time.perf_counter()
            for pos in range(steps):
                logits = forward(tok, pos)
                tok = [int(logits.argmax())]
            best_d = min(best_d, (time.perf_counter() - t0) / steps)
    print(json.dumps({"prefill": plen / best_p, "decode": 1 / best_d, "torch": torch.__version__,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
