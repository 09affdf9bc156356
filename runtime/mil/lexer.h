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
    int saw_comment;      /* lenient mode: a comment was skipped */
} lexer;

void lex_init(lexer *lx, const char *src, size_t len, int lenient);
const token *lex_peek(lexer *lx, int k); /* k < LEX_LOOKAHEAD */
token lex_next(lexer *lx);
const char *tk_name(tk_kind k);

#endif
