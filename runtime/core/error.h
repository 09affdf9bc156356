/* error.h - the error record every fallible core function fills.
 *
 * Core code (no Lua) returns an int status: 0 on success, a negative ERR_* code on failure, and
 * writes a message (and, for source errors, a position) into the caller's ane_error. Only
 * runtime/lua turns a record into a Lua error. Messages never use caller text as a format. */
#ifndef ANE_CORE_ERROR_H
#define ANE_CORE_ERROR_H

#include <stdarg.h>
#include <stddef.h>

enum {
    ERR_OK = 0,
    ERR_INVAL = -1,       /* bad argument or value */
    ERR_NOMEM = -2,       /* allocation failed or a size overflowed */
    ERR_IO = -3,          /* file missing, unreadable, short write */
    ERR_FORMAT = -4,      /* malformed file or text (.npy, MIL, blob) */
    ERR_SHAPE = -5,       /* impossible or mismatched shape */
    ERR_TYPE = -6,        /* wrong dtype */
    ERR_UNSUPPORTED = -7, /* valid, but not implemented or not allowed here */
    ERR_BACKEND = -8,     /* the backend refused (compile/load/eval failure) */
    ERR_BUDGET = -9,      /* the per-process compile budget is spent */
    ERR_STATE = -10,      /* object used in the wrong state (closed, unloaded, freed) */
    ERR_CANCELLED = -11,
    ERR_TIMEOUT = -12,
};

#define ERR_MSG_MAX 1024

typedef struct ane_error {
    int code;               /* ERR_* (0 when clear) */
    char msg[ERR_MSG_MAX];  /* full text, including "file:line:col: " when a position is known */
    char file[256];         /* source of a positioned error ("" if none) */
    int line, col;          /* 1-based; 0 when unknown */
} ane_error;

void err_clear(ane_error *e);
/* Fill e (may be NULL) and return code. printf-style; pass caller text only through "%s". */
int err_set(ane_error *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Same, with a source position; msg becomes "file:line:col: <text>". */
int err_setat(ane_error *e, int code, const char *file, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
/* err_set and err_setat taking a va_list, for functions that pass their own format on. */
int err_vset(ane_error *e, int code, const char *fmt, va_list ap);
int err_vsetat(ane_error *e, int code, const char *file, int line, int col, const char *fmt,
               va_list ap);
/* Prefix an existing message with context ("loading w.bin: <old message>"). */
int err_prefix(ane_error *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *err_codename(int code);

#endif
