/* llama2c.h - llama2.c `.bin` checkpoints (the "version 0" format of run.c and export.py).
 *
 * Layout: seven little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 * seq_len), then fp32 arrays in this order: token embedding [vocab, dim], rms_att [L, dim],
 * wq [L, dim, dim], wk [L, kv_dim, dim], wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim],
 * w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim], then the RoPE
 * tables freq_cis_real and freq_cis_imag [seq, head_size/2] each (skipped on load, written as
 * cos/sin with theta 10000 on save), then, only when vocab_size is negative, the classifier
 * wcls [|vocab|, dim]. A positive vocab_size means the classifier is the embedding (shared).
 * kv_dim = dim * n_kv_heads / n_heads.
 *
 * Loading maps the file (MAP_PRIVATE: writes to a tensor stay in memory, copy-on-write) and every
 * weight is an fp32 tensor viewing the mapping; the mapping is a refcounted storage unmapped when
 * the last view is released. The file size must match the config exactly. */
#ifndef ANE_FORMATS_LLAMA2C_H
#define ANE_FORMATS_LLAMA2C_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/tensor.h"

typedef struct llama2c_config {
    int dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq; /* vocab > 0 here, always */
    int shared_classifier;                                      /* 1: wcls is the embedding */
} llama2c_config;

enum {
    L2C_EMBED, L2C_RMS_ATT, L2C_WQ, L2C_WK, L2C_WV, L2C_WO, L2C_RMS_FFN, L2C_W1, L2C_W2, L2C_W3,
    L2C_RMS_FINAL, L2C_WCLS, L2C_NWEIGHTS
};
/* "embed", "rms_att", ..., "wcls": the weights table's names, in file order. */
extern const char *const llama2c_names[L2C_NWEIGHTS];

/* Checks a config (positive sizes, heads divide dim, kv heads divide heads, even head size, sizes
 * that fit in memory). name prefixes the message (a file name, or "config"). */
int llama2c_check_config(const llama2c_config *c, const char *name, ane_error *e);
/* The shape of weight `which` under config c (rank 1..3). */
int llama2c_shape(const llama2c_config *c, int which, int64_t shape[3]);

/* Where each weight lives in a file image of n bytes: parses and checks the header and the size.
 * off[which] is a byte offset (wcls == embed when shared). name is used in messages. */
typedef struct llama2c_layout {
    llama2c_config cfg;
    size_t off[L2C_NWEIGHTS];
    size_t rope_off, rope_bytes; /* the skipped RoPE tables */
    size_t total;                /* the exact file size the config implies */
} llama2c_layout;
int llama2c_parse(const void *buf, size_t n, const char *name, llama2c_layout *out, ane_error *e);

typedef struct llama2c_ckpt {
    llama2c_config cfg;
    tensor w[L2C_NWEIGHTS]; /* each holds a reference on the mapping; w[WCLS] shares embed's bytes */
} llama2c_ckpt;

/* Map path and fill ck (overwritten). ERR_IO (missing, unreadable), ERR_FORMAT (bad header,
 * truncated or oversized file, naming the file and what is missing). */
int llama2c_load(const char *path, llama2c_ckpt *ck, ane_error *e);
void llama2c_ckpt_release(llama2c_ckpt *ck); /* idempotent */

/* Write a checkpoint atomically (atomic_file). w[i] must have the shape llama2c_shape gives
 * (any rank with the same element count is refused: the shape must match exactly) and dtype fp32
 * or fp16; they are written as fp32. w[L2C_WCLS] is ignored when c->shared_classifier. */
int llama2c_save(const char *path, const llama2c_config *c, const tensor *const w[L2C_NWEIGHTS],
                 ane_error *e);

#endif
