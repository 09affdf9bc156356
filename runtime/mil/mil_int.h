/* mil_int.h - internals shared by the MIL front end (arena, IR growth, lexer, printer helpers).
 * Not a contract: only files in runtime/mil include it. */
#ifndef ANE_MIL_INT_H
#define ANE_MIL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ir.h"
#include "mil.h"

/* ---- arena.c: bump allocator owning every string, array and literal of a program ---- */
typedef struct mil_arena mil_arena;
mil_arena *mil_arena_new(void);
void mil_arena_free(mil_arena *a);                        /* NULL-safe */
void *mil_arena_alloc(mil_arena *a, size_t n);            /* zeroed, max-aligned; NULL on OOM */
void *mil_arena_alloc_array(mil_arena *a, size_t n, size_t size); /* overflow-checked */
/* Room for element n of the arena array *arr holding *cap elements of size bytes: when full, a
 * block of twice the elements (first when empty, at most max) replaces it; the old block stays
 * in the arena, which bounds the waste to the live size. Callers check their own element limits
 * (their messages differ). 0, or -1 when the arena is out of memory. */
int mil_arena_grow(mil_arena *a, void **arr, int *cap, int n, int first, int max, size_t size);
char *mil_arena_strdup(mil_arena *a, const char *s);
char *mil_arena_strndup(mil_arena *a, const char *s, size_t n);
void *mil_arena_memdup(mil_arena *a, const void *src, size_t n);
/* Free p now if it is the start of a chunk of its own (a big request); 1 if it was. */
int mil_arena_free_big(mil_arena *a, void *p);
size_t mil_arena_bytes(const mil_arena *a);               /* bytes handed out so far */

/* Upper bounds that keep every input's memory proportional to its size. */
#define MIL_MAX_NAME 1024          /* identifier length */
#define MIL_MAX_STRING (1 << 20)   /* one string literal */
#define MIL_MAX_TYPE_DEPTH 16      /* dict<list<tuple<...>>> nesting */
#define MIL_MAX_VALUES (1 << 24)   /* values per function */
#define MIL_MAX_TEXT ((size_t)1 << 30)

/* ---- ir.c: growth of IR arrays (each returns the new element index or a negative code) ---- */
int mil__func_push_value(mil_program *p, mil_function *f, const mil_value *v, ane_error *e);
int mil__func_push_op(mil_program *p, mil_function *f, const mil_op *op, ane_error *e);
int mil__func_push_param(mil_program *p, mil_function *f, int value, ane_error *e);
int mil__prog_push_func(mil_program *p, const char *name, const char *opset, ane_error *e);
int mil__prog_push_attr(mil_program *p, const char *name, mil_literal *lit, ane_error *e);
/* Deep copies into p's arena. */
int mil__type_copy(mil_program *p, mil_type *dst, const mil_type *src, ane_error *e);
mil_literal *mil__lit_copy(mil_program *p, const mil_literal *src, ane_error *e);
/* Register name -> value index in f's table (caller checked it is new). */
int mil__names_add(mil_program *p, mil_function *f, const char *name, int value, ane_error *e);
int mil__opset_version(const char *opset);
int mil__is_ident(const char *s);
mil_program *mil__program_alloc(ane_error *e);

/* ---- blob.c ---- */
/* Decode the blob bytes of lit (a BLOBFILE literal) from p->blobs into lit->data (which may
 * point into p->blobs itself: see mil_literal). ERR_STATE if the file is not in p->blobs. */
int mil__lit_load_blob(mil_program *p, mil_literal *lit, ane_error *e);

/* ---- printer.c: a growable text buffer and literal/type printing ---- */
typedef struct mil_buf {
    char *s;
    size_t n, cap;
    int oom;
} mil_buf;
void mil__buf_put(mil_buf *b, const char *s, size_t n);
void mil__buf_puts(mil_buf *b, const char *s);
void mil__buf_printf(mil_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void mil__print_type(mil_buf *b, const mil_type *t, int dialect_1_0);
void mil__print_literal(mil_buf *b, const mil_literal *l, int dialect_1_0);

#endif
