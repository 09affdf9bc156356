/* chain.h - run kernels back to back over shared buffers (plain C, no Lua).
 *
 * A chain binds every input of link i+1 to an output of link i (by name when every input name
 * of link i+1 is an output name of link i, else by position), allocates each shared buffer once
 * through the producing kernel's backend (alloc_io: IOSurfaces on the ANE, aligned heap on the
 * CPU) and then evaluates the links in order with no copies and no calls back to the caller.
 * Shape or dtype mismatches are errors at bind time that name both links and the tensor.
 *
 * Kernels are borrowed: the caller keeps them alive (and loaded) to run the chain; chain_free
 * and the queries below never touch them, so a chain may be freed after its kernels. */
#ifndef ANE_QUEUE_CHAIN_H
#define ANE_QUEUE_CHAIN_H

#include <stdint.h>

#include "../backend/backend.h"

typedef struct chain chain;

typedef enum { CHAIN_BIND_AUTO = 0, CHAIN_BIND_NAME, CHAIN_BIND_POSITION } chain_bind;

/* Bind n >= 1 kernels. names[i] (optional, may be NULL or hold NULLs) labels link i in errors,
 * else "kernel i+1" (1-based, as the Lua table lists them). Unloaded kernels are loaded. */
int chain_new(kernel *const *ks, int n, const char *const *names, chain_bind how, chain **out,
              ane_error *e);
void chain_free(chain *c); /* NULL-safe; frees the shared buffers (views keep their storage) */

int chain_length(const chain *c);
int chain_ninputs(const chain *c);   /* inputs of the first link */
int chain_noutputs(const chain *c);  /* outputs of the last link */
/* The chain's own input buffers (allocated by the first kernel's alloc_io) and its output
 * buffers (the last kernel's); valid until chain_free. Write inputs / read outputs in place. */
tensor *chain_input(chain *c, int i);
tensor *chain_output(chain *c, int i);
int chain_link_ninputs(const chain *c, int link); /* inputs of link (0-based), -1 if none */
/* Which output of link `link - 1` feeds input `input` of `link` (link >= 1), or -1. */
int chain_binding(const chain *c, int link, int input);
/* 1 if link (0-based, >= 1) copies its inputs: its first direct eval on the previous link's
 * output surfaces failed and a staged retry worked (field notes 4.6: statusType 0x9). */
int chain_link_staged(const chain *c, int link);

/* Evaluate every link. in = NULL uses the chain's input buffers; otherwise in[i] replaces
 * input i for this run (checked against the first kernel's description). On failure e names
 * the link. */
int chain_run(chain *c, tensor *const *in, ane_error *e);

/* Nanoseconds each link's eval took in the last run (array of chain_length), and the whole
 * run including the chain's own work. */
const uint64_t *chain_times_ns(const chain *c);
uint64_t chain_total_ns(const chain *c);

#endif
