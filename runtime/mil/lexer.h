/* lexer.h - MIL tokens (mil-reference.md section 2). Internal to runtime/mil.
 *
 * Tokens are produced on demand with up to LEX_LOOKAHEAD tokens of lookahead; each keeps its
 * position (1-based line and byte column) and its span in the text. `>>` is always two `>`. */
#ifndef ANE_MIL_LEXER_H
#define ANE_MIL_LEXER_H

#include <stddef.h>

typedef enum {
    TK_EOF = 0, TK_ERROR, TK_IDENT, TK_INT, TK_FLOAT, TK_STRING,
    TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_LBRACE, TK_RBRACE,
    TK_LT, TK_GT, TK_COMMA, TK_EQ, TK_SEMI, TK_ARROW, TK_QUEST,
} tk_kind;

typedef struct token {
    tk_kind kind;
    size_t pos, len;      /* span in the text (for a STRING: including the quotes) */
    int line, col;
    const char *err;      /* TK_ERROR: what is wrong (static text) */
} token;

#define LEX_LOOKAHEAD 3

typedef struct lexer {
    const char *src;
    size_t len, pos;
    int line, col;
    int lenient;
    token la[LEX_LOOKAHEAD];
    int nla;
    /* every `//` comment skipped so far, in text order (malloc'd; lex_free releases it) */
    struct lex_comment {
        size_t pos, len;  /* from the `//` to the end of the line, the newline excluded */
        int whole_line;   /* nothing but blanks before it on its line */
    } *comments;
    int ncomments, ccap, ctaken; /* ctaken: how many the parser has claimed (lex_take_comments) */
    int oom;              /* recording a comment ran out of memory */
} lexer;

void lex_init(lexer *lx, const char *src, size_t len, int lenient);
void lex_free(lexer *lx); /* the comment list; safe twice */
const token *lex_peek(lexer *lx, int k); /* k < LEX_LOOKAHEAD */
token lex_next(lexer *lx);
const char *tk_name(tk_kind k);

#endif
