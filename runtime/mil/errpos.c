/* errpos.c - positioned MIL errors: "file:line:col: message", then the source line and a caret.
 * Shared by the parser and the checker (check.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "mil_int.h"

#define WINDOW 100 /* at most this many source bytes are shown around the column */

int mil_error_at(ane_error *e, const mil_program *p, int code, int line, int col, const char *fmt,
                 ...) {
    if (!e) return code;
    const char *file = p && p->source_name ? p->source_name : "<string>";
    va_list ap;
    va_start(ap, fmt);
    if (line <= 0) err_vset(e, code, fmt, ap); /* a built program: no position to give */
    else err_vsetat(e, code, file, line, col, fmt, ap);
    va_end(ap);
    if (line <= 0 || !p || !p->source) return code;

    /* Find the line (1-based) in the source text. */
    const char *s = p->source;
    for (int l = 1; l < line && *s; s++)
        if (*s == '\n') l++;
    size_t len = strcspn(s, "\n");
    if (len && s[len - 1] == '\r') len--;
    size_t c = col > 0 ? (size_t)col - 1 : 0;
    if (c > len) c = len;
    size_t from = c > WINDOW / 2 ? c - WINDOW / 2 : 0;
    size_t to = from + WINDOW < len ? from + WINDOW : len;

    char src[WINDOW + 16], caret[WINDOW + 16];
    size_t k = 0, m = 0;
    if (from > 0) { memcpy(src, "...", 3); memcpy(caret, "   ", 3); k = m = 3; }
    for (size_t i = from; i < to; i++) {
        unsigned char ch = (unsigned char)s[i];
        src[k++] = ch < 0x20 && ch != '\t' ? ' ' : (char)ch; /* keep the terminal sane */
    }
    for (size_t i = from; i < c; i++) caret[m++] = s[i] == '\t' ? '\t' : ' ';
    caret[m++] = '^';
    if (to < len) { memcpy(src + k, "...", 3); k += 3; }
    src[k] = caret[m] = '\0';
    size_t used = strlen(e->msg);
    snprintf(e->msg + used, sizeof e->msg - used, "\n    %s\n    %s", src, caret);
    return code;
}
