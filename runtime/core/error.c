/* error.c - filling ane_error records. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void err_clear(ane_error *e) {
    if (!e) return;
    e->code = 0;
    e->msg[0] = e->file[0] = '\0';
    e->line = e->col = 0;
}

int err_vset(ane_error *e, int code, const char *fmt, va_list ap) {
    if (!e) return code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    e->code = code;
    e->file[0] = '\0';
    e->line = e->col = 0;
    return code;
}

int err_set(ane_error *e, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

int err_vsetat(ane_error *e, int code, const char *file, int line, int col, const char *fmt,
               va_list ap) {
    if (!e) return code;
    char text[ERR_MSG_MAX];
    vsnprintf(text, sizeof text, fmt, ap);
    e->code = code;
    snprintf(e->file, sizeof e->file, "%s", file ? file : "");
    e->line = line;
    e->col = col;
    snprintf(e->msg, sizeof e->msg, "%s:%d:%d: %s", e->file, line, col, text);
    return code;
}

int err_setat(ane_error *e, int code, const char *file, int line, int col, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_vsetat(e, code, file, line, col, fmt, ap);
    va_end(ap);
    return code;
}

int err_prefix(ane_error *e, const char *fmt, ...) {
    if (!e) return ERR_INVAL;
    char pre[ERR_MSG_MAX], old[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%s: %s", pre, old);
    return e->code;
}

const char *err_codename(int code) {
    switch (code) {
    case ERR_OK: return "ok";
    case ERR_INVAL: return "invalid argument";
    case ERR_NOMEM: return "out of memory";
    case ERR_IO: return "i/o error";
    case ERR_FORMAT: return "format error";
    case ERR_SHAPE: return "shape error";
    case ERR_TYPE: return "type error";
    case ERR_UNSUPPORTED: return "unsupported";
    case ERR_BACKEND: return "backend error";
    case ERR_BUDGET: return "compile budget exhausted";
    case ERR_STATE: return "invalid state";
    case ERR_CANCELLED: return "cancelled";
    case ERR_TIMEOUT: return "timed out";
    default: return "error";
    }
}
