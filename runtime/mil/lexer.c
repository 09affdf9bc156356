/* lexer.c - hand-written MIL tokenizer (mil-reference.md section 2). Never reads past len; every
 * malformed token becomes one TK_ERROR token carrying a static message. */
#include "lexer.h"

#include <stdlib.h>
#include <string.h>

#include "mil_int.h"

void lex_init(lexer *lx, const char *src, size_t len, int lenient) {
    memset(lx, 0, sizeof *lx);
    lx->src = src;
    lx->len = len;
    lx->line = lx->col = 1;
    lx->lenient = lenient;
}

void lex_free(lexer *lx) {
    free(lx->comments);
    lx->comments = NULL;
    lx->ncomments = lx->ccap = lx->ctaken = 0;
}

/* Record the comment starting at pos (`//`) and running len bytes. */
static void note_comment(lexer *lx, size_t pos, size_t len) {
    if (lx->ncomments == lx->ccap) {
        int cap = lx->ccap ? lx->ccap * 2 : 16;
        struct lex_comment *c = cap > 0 ? realloc(lx->comments, sizeof *c * (size_t)cap) : NULL;
        if (!c) { lx->oom = 1; return; }
        lx->comments = c;
        lx->ccap = cap;
    }
    size_t b = pos;
    while (b > 0 && (lx->src[b - 1] == ' ' || lx->src[b - 1] == '\t' || lx->src[b - 1] == '\r')) b--;
    struct lex_comment *c = &lx->comments[lx->ncomments++];
    c->pos = pos;
    c->len = len;
    c->whole_line = b == 0 || lx->src[b - 1] == '\n';
}

const char *tk_name(tk_kind k) {
    switch (k) {
    case TK_EOF: return "end of input";
    case TK_ERROR: return "invalid token";
    case TK_IDENT: return "identifier";
    case TK_INT: return "integer";
    case TK_FLOAT: return "number";
    case TK_STRING: return "string";
    case TK_LPAREN: return "'('";
    case TK_RPAREN: return "')'";
    case TK_LBRACK: return "'['";
    case TK_RBRACK: return "']'";
    case TK_LBRACE: return "'{'";
    case TK_RBRACE: return "'}'";
    case TK_LT: return "'<'";
    case TK_GT: return "'>'";
    case TK_COMMA: return "','";
    case TK_EQ: return "'='";
    case TK_SEMI: return "';'";
    case TK_ARROW: return "'->'";
    case TK_QUEST: return "'?'";
    }
    return "token";
}

static int at(const lexer *lx, size_t i) { return i < lx->len ? (unsigned char)lx->src[i] : -1; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_hex(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_identc(int c) { return is_alpha(c) || is_digit(c) || c == '@'; }

/* Advance over n bytes that contain no newline. */
static void adv(lexer *lx, size_t n) {
    lx->pos += n;
    lx->col += (int)n;
}

static token make(lexer *lx, tk_kind k, size_t start, int line, int col) {
    token t = {k, start, lx->pos - start, line, col, NULL};
    return t;
}

static token error_tok(lexer *lx, size_t start, int line, int col, const char *msg) {
    token t = make(lx, TK_ERROR, start, line, col);
    t.err = msg;
    return t;
}

/* Scans a number at lx->pos (sign already known to be followed by a digit, or inf/nan). */
static token scan_number(lexer *lx, size_t start, int line, int col) {
    int c = at(lx, lx->pos);
    if (c == '+' || c == '-') adv(lx, 1);
    /* inf / nan after a sign */
    if (!is_digit(at(lx, lx->pos))) {
        size_t p = lx->pos;
        if ((at(lx, p) == 'i' && at(lx, p + 1) == 'n' && at(lx, p + 2) == 'f') ||
            (at(lx, p) == 'n' && at(lx, p + 1) == 'a' && at(lx, p + 2) == 'n')) {
            adv(lx, 3);
            if (is_identc(at(lx, lx->pos))) return error_tok(lx, start, line, col, "malformed number");
            return make(lx, TK_FLOAT, start, line, col);
        }
        return error_tok(lx, start, line, col, "malformed number");
    }
    tk_kind kind = TK_INT;
    if (at(lx, lx->pos) == '0' && (at(lx, lx->pos + 1) == 'x' || at(lx, lx->pos + 1) == 'X')) {
        /* C99 hex float: 0x h+ [. h*] p [+-] d+ ; the exponent is required. */
        adv(lx, 2);
        size_t nd = 0;
        while (is_hex(at(lx, lx->pos))) { adv(lx, 1); nd++; }
        if (at(lx, lx->pos) == '.') {
            adv(lx, 1);
            while (is_hex(at(lx, lx->pos))) { adv(lx, 1); nd++; }
        }
        if (!nd) return error_tok(lx, start, line, col, "malformed hex float: no digits");
        c = at(lx, lx->pos);
        if (c != 'p' && c != 'P')
            return error_tok(lx, start, line, col, "malformed hex float: missing 'p' exponent");
        adv(lx, 1);
        if (at(lx, lx->pos) == '+' || at(lx, lx->pos) == '-') adv(lx, 1);
        if (!is_digit(at(lx, lx->pos)))
            return error_tok(lx, start, line, col, "malformed hex float: exponent has no digits");
        while (is_digit(at(lx, lx->pos))) adv(lx, 1);
        kind = TK_FLOAT;
    } else {
        while (is_digit(at(lx, lx->pos))) adv(lx, 1);
        if (at(lx, lx->pos) == '.') {
            adv(lx, 1);
            while (is_digit(at(lx, lx->pos))) adv(lx, 1);
            kind = TK_FLOAT;
        }
        c = at(lx, lx->pos);
        if (c == 'e' || c == 'E') {
            adv(lx, 1);
            if (at(lx, lx->pos) == '+' || at(lx, lx->pos) == '-') adv(lx, 1);
            if (!is_digit(at(lx, lx->pos)))
                return error_tok(lx, start, line, col, "malformed number: exponent has no digits");
            while (is_digit(at(lx, lx->pos))) adv(lx, 1);
            kind = TK_FLOAT;
        }
    }
    c = at(lx, lx->pos);
    if (is_identc(c) || c == '.') return error_tok(lx, start, line, col, "malformed number");
    return make(lx, kind, start, line, col);
}

static token scan(lexer *lx) {
    for (;;) { /* whitespace and comments (legal in strict mode too: Apple's parser takes them) */
        int c = at(lx, lx->pos);
        if (c == ' ' || c == '\t' || c == '\r') { adv(lx, 1); continue; }
        if (c == '\n') { lx->pos++; lx->line++; lx->col = 1; continue; }
        if (c == '/' && at(lx, lx->pos + 1) == '/') {
            size_t s = lx->pos;
            while (at(lx, lx->pos) != '\n' && at(lx, lx->pos) != -1) adv(lx, 1);
            note_comment(lx, s, lx->pos - s);
            continue;
        }
        break;
    }
    size_t start = lx->pos;
    int line = lx->line, col = lx->col;
    int c = at(lx, lx->pos);
    if (c == -1) return make(lx, TK_EOF, start, line, col);
    if (is_alpha(c)) {
        while (is_identc(at(lx, lx->pos))) adv(lx, 1);
        if (lx->pos - start > MIL_MAX_NAME) return error_tok(lx, start, line, col, "identifier too long");
        return make(lx, TK_IDENT, start, line, col);
    }
    if (is_digit(c)) return scan_number(lx, start, line, col);
    if (c == '-' || c == '+') {
        int d = at(lx, lx->pos + 1);
        if (c == '-' && d == '>') { adv(lx, 2); return make(lx, TK_ARROW, start, line, col); }
        if (is_digit(d) || d == 'i' || d == 'n') return scan_number(lx, start, line, col);
        adv(lx, 1);
        return error_tok(lx, start, line, col, c == '-' ? "unexpected '-'" : "unexpected '+'");
    }
    if (c == '"') {
        adv(lx, 1);
        for (;;) {
            int d = at(lx, lx->pos);
            if (d == -1 || d == '\n') return error_tok(lx, start, line, col, "unterminated string");
            if (lx->pos - start > MIL_MAX_STRING) return error_tok(lx, start, line, col, "string too long");
            if (d == '"') { adv(lx, 1); break; }
            if (d == '\\') {
                int x = at(lx, lx->pos + 1);
                if (x != '"' && x != '\\') {
                    adv(lx, 1);
                    return error_tok(lx, start, line, col,
                                     "unknown escape in string (only \\\" and \\\\ are allowed)");
                }
                adv(lx, 2);
                continue;
            }
            adv(lx, 1);
        }
        return make(lx, TK_STRING, start, line, col);
    }
    tk_kind k;
    switch (c) {
    case '(': k = TK_LPAREN; break;
    case ')': k = TK_RPAREN; break;
    case '[': k = TK_LBRACK; break;
    case ']': k = TK_RBRACK; break;
    case '{': k = TK_LBRACE; break;
    case '}': k = TK_RBRACE; break;
    case '<': k = TK_LT; break;
    case '>': k = TK_GT; break; /* `>>` is two tokens by construction */
    case ',': k = TK_COMMA; break;
    case '=': k = TK_EQ; break;
    case ';': k = TK_SEMI; break;
    case '?': k = TK_QUEST; break;
    default:
        adv(lx, 1);
        return error_tok(lx, start, line, col, "unexpected character");
    }
    adv(lx, 1);
    return make(lx, k, start, line, col);
}

const token *lex_peek(lexer *lx, int k) {
    while (lx->nla <= k) {
        /* After an error or EOF, keep repeating it rather than scanning past. */
        if (lx->nla > 0 && (lx->la[lx->nla - 1].kind == TK_EOF || lx->la[lx->nla - 1].kind == TK_ERROR)) {
            lx->la[lx->nla] = lx->la[lx->nla - 1];
            lx->nla++;
            continue;
        }
        lx->la[lx->nla++] = scan(lx);
    }
    return &lx->la[k];
}

token lex_next(lexer *lx) {
    lex_peek(lx, 0);
    token t = lx->la[0];
    if (t.kind == TK_EOF || t.kind == TK_ERROR) return t; /* sticky */
    memmove(lx->la, lx->la + 1, sizeof(token) * (size_t)(lx->nla - 1));
    lx->nla--;
    return t;
}
