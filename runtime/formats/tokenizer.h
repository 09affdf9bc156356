/* tokenizer.h - subword tokenizers: llama2.c's tokenizer.bin and Hugging Face BPE (tokenizer.json).
 *
 * llama2.c (`tok_load_bin`): the file is an int32 max token length, then per token a float score,
 * an int32 byte length and the bytes; the vocabulary size is not stored (a checkpoint gives it, or
 * the file is read to its end). Encoding follows run.c exactly: optional BOS (id 1), a dummy prefix
 * token " " when the text is not empty, one token per UTF-8 code point (or its bytes at id byte + 3
 * when the code point is not in the vocabulary), then repeatedly the adjacent pair whose
 * concatenation is a token with the best score (ties: leftmost; scores <= -1e10 never merge),
 * then optional EOS (id 2). Decoding: a leading space is dropped after BOS and `<0xXX>` pieces are
 * the raw byte.
 *
 * Hugging Face BPE (`tok_new_bpe`, fed by lua/ane/tokenizer.lua from a tokenizer.json): added
 * tokens are matched first (leftmost-longest on the raw text); every other segment is normalized
 * (NFC, Prepend, Replace), pre-tokenized (Split by an Oniguruma regex, ByteLevel, Metaspace) and
 * each word is merged by rank (lowest first, ties leftmost) with byte fallback `<0xXX>` or unk.
 *
 * Merging uses a heap over a linked list of symbols: O(n log n) for n symbols, whatever the
 * number of merges. Ids are 0-based, as the files number them. */
#ifndef ANE_FORMATS_TOKENIZER_H
#define ANE_FORMATS_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct tokenizer tokenizer;

/* tokenizer.bin from memory or a file; vocab_size < 0 reads tokens to the end of the data. */
tokenizer *tok_load_bin_mem(const void *buf, size_t n, const char *name, int vocab_size, ane_error *e);
tokenizer *tok_load_bin(const char *path, int vocab_size, ane_error *e);
/* Write tokenizer.bin atomically. */
int tok_save_bin(const char *path, int n, const char *const *pieces, const size_t *lens, const float *scores,
                 int max_len, ane_error *e);

/* ---- Hugging Face BPE ---- */
enum { TOK_NORM_NFC = 1, TOK_NORM_PREPEND, TOK_NORM_REPLACE };
enum { TOK_PRE_SPLIT = 1, TOK_PRE_BYTELEVEL, TOK_PRE_METASPACE };
enum { TOK_SPLIT_ISOLATED = 1, TOK_SPLIT_REMOVED, TOK_SPLIT_MERGED_PREV, TOK_SPLIT_MERGED_NEXT, TOK_SPLIT_CONTIGUOUS };
enum { TOK_DEC_NONE = 0, TOK_DEC_BYTELEVEL, TOK_DEC_SENTENCEPIECE, TOK_DEC_METASPACE };
enum { TOK_PREPEND_ALWAYS = 0, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER };

typedef struct tok_norm_step {
    int kind;
    const char *a; size_t alen; /* Prepend text; Replace pattern */
    const char *b; size_t blen; /* Replace content */
} tok_norm_step;

typedef struct tok_pre_step {
    int kind;
    const char *regex; size_t regex_len; /* Split */
    int behavior, invert;                /* Split */
    int add_prefix_space, use_regex;     /* ByteLevel */
    const char *replacement; size_t replacement_len; int prepend_scheme, split; /* Metaspace */
} tok_pre_step;

#define TOK_MAX_STEPS 8

typedef struct tok_bpe_spec {
    const char *name;          /* file name for messages */
    int n;                     /* vocabulary size: ids 0..n-1 */
    const char *const *pieces; /* n entries; NULL for an id nobody defines */
    const size_t *lens;
    const unsigned char *in_model; /* 1: a model.vocab entry (BPE may produce it) */
    int n_merges;
    const char *const *merge_l, *const *merge_r;
    const size_t *merge_ll, *merge_rl;
    int n_added;               /* added tokens, matched before anything else */
    const int *added_id;
    int byte_fallback, ignore_merges, fuse_unk, unk_id; /* unk_id -1: none */
    int n_norm; tok_norm_step norm[TOK_MAX_STEPS];
    int n_pre; tok_pre_step pre[TOK_MAX_STEPS];
    int decoder;
    int decoder_strip;         /* sentencepiece/metaspace: drop one leading space of the text */
    int bos_id, eos_id;        /* -1: none */
} tok_bpe_spec;

tokenizer *tok_new_bpe(const tok_bpe_spec *s, ane_error *e);

void tok_free(tokenizer *t); /* NULL-safe */

/* Encode n bytes of text. On success *ids points to *nids ids in a buffer the tokenizer owns,
 * valid until the next encode. */
int tok_encode(tokenizer *t, const char *text, size_t n, int bos, int eos, const int32_t **ids, size_t *nids,
               ane_error *e);
/* The bytes token id stands for after prev (prev < 0: none), run.c's rules for tokenizer.bin, the
 * declared decoder for tokenizer.json. NULL for an id out of range. */
const char *tok_decode(const tokenizer *t, int prev, int id, size_t *len);
/* The raw piece as stored (NULL out of range) and the id of a piece (-1 if absent). */
const char *tok_piece(const tokenizer *t, int id, size_t *len);
float tok_score(const tokenizer *t, int id);
int tok_lookup(const tokenizer *t, const char *s, size_t len);
int tok_vocab_size(const tokenizer *t);
int tok_bos(const tokenizer *t);
int tok_eos(const tokenizer *t);
int tok_max_len(const tokenizer *t);
const char *tok_kind(const tokenizer *t); /* "llama2c" or "bpe" */

#endif
