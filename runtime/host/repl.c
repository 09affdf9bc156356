/* repl.c - the interactive loop.
 *
 * On a terminal: libedit's readline API for line editing, a history file ($ANE_HISTORY_FILE, else
 * ~/.ane_history), tab completion over globals and nested fields. Otherwise plain lines from
 * stdin (so `ane -i < file` is scriptable). In both: a line is first tried as `return <line>` so
 * expressions print their values; a statement left incomplete (the parser stops at "<eof>")
 * continues on the next line; errors print a traceback and the loop goes on.
 *
 * Ctrl-C: while a statement runs, host_docall turns it into an "interrupted!" error. While
 * reading a line, our SIGINT handler only sets a flag; our getc function (libedit calls it for
 * every key) notices the flag, and the line being typed (or a pending multi-line statement) is
 * dropped. libedit's own signal handling is off because it re-raises SIGINT with the previous
 * disposition, which would kill the process.
 *
 * On a terminal no ^C is lost, whenever it comes: the REPL thread keeps SIGINT blocked except
 * while it waits for a key (pselect) and while a statement runs (host_docall), and handlers that
 * the kernel runs on another thread forward the signal here (host_forward_signal). A ^C that
 * lands after Enter interrupts that statement; one that lands after the statement ended clears
 * the next line. libedit never sees ^C as a byte: its editing mode keeps ISIG on (only ^V, quoted
 * insert, turns it off, to insert a literal ^C on purpose). */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <locale.h>
#include <lua.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <termios.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<editline/readline.h>)
#include <editline/readline.h>
#else
#include <readline/readline.h>
#endif
#else
#include <editline/readline.h>
#endif

#include "host.h"

#define PROMPT1 "> "
#define PROMPT2 ">> "
#define HISTORY_MAX 1000
#define EOFMARK "<eof>"

enum { LINE_EOF = 0, LINE_OK = 1, LINE_CANCEL = -1 };
enum { REPL_EOF = -100, REPL_CANCEL = -101 }; /* loadline results besides lua statuses */

static volatile sig_atomic_t got_sigint;
static int cancel_step;        /* 0 reading; 1 ^C seen, cursor sent to end; 2 line ended */
static int use_editline;       /* stdin is a terminal */
static int key_fd = -1;        /* where keys are read from (see open_keys) */
static sigset_t wait_mask;     /* the signal mask while waiting for a key: SIGINT let in */
static char *history_path;     /* NULL: no history file */
static lua_State *replL;       /* for the completion callback only */

static void on_sigint(int sig) {
    if (host_forward_signal(sig)) return;
    got_sigint = 1;
}

/* {==================================================================
 * Reading keys and lines
 * =================================================================== */

/* The terminal opened a second time, non-blocking, to read keys from. A ^C makes the line
 * discipline discard input not yet read, so a byte pselect reported can be gone when read()
 * runs; a blocking read would then wait (with SIGINT blocked) for the next key. A new open file
 * description leaves stdin's own flags alone (the shell shares it). If the terminal cannot be
 * opened again, keys come from stdin and that rare wait is possible. */
static int open_keys(void) {
    const char *name = ttyname(STDIN_FILENO);
    int fd = name ? open(name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) : -1;
    if (fd < 0) fd = open("/proc/self/fd/0", O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    return fd >= 0 ? fd : STDIN_FILENO;
}

/* One byte from the terminal: >= 0 a byte, -1 end of input, -2 interrupted. SIGINT is blocked
 * on this thread except inside pselect, so a ^C that lands between the flag test and the wait
 * stays pending and ends the wait at once. */
static int read_byte(void) {
    for (;;) {
        if (got_sigint) return -2;
        fd_set rfds;
        FD_ZERO(&rfds);
        FD_SET(key_fd, &rfds);
        int r = pselect(key_fd + 1, &rfds, NULL, NULL, NULL, &wait_mask);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        unsigned char c;
        ssize_t n = read(key_fd, &c, 1);
        if (n == 1) return c;
        if (n == 0) return -1;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    }
}

/* libedit's getc hook: returns one character (a Unicode code point; libedit stores wide chars)
 * or -1 at end of input. On ^C it first sends ^E (move to end of line), then prints "^C" and
 * ends the line; read_line sees cancel_step and drops what was typed. */
static int repl_getc(FILE *f) {
    (void)f;
    if (cancel_step == 1) {
        cancel_step = 2;
        fputs("^C", stdout);
        fflush(stdout);
        return '\n';
    }
    if (cancel_step == 2) return '\n';
    int c = read_byte();
    if (c == -2) {
        cancel_step = 1;
        return 5; /* ^E: ed-move-to-end, so the newline leaves the whole line on screen */
    }
    if (c < 0x80) return c; /* ASCII, or -1 */
    /* UTF-8: decode a multi-byte sequence; a malformed one passes through byte by byte. */
    int extra = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
    int cp = extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
    for (int i = 0; i < extra; i++) {
        int b = read_byte();
        if (b < 0 || (b & 0xC0) != 0x80) return c;
        cp = (cp << 6) | (b & 0x3F);
    }
    return extra ? cp : c;
}

/* Read one line (without its newline) into *out (malloc'd). */
static int read_line(const char *prompt, char **out) {
    *out = NULL;
    got_sigint = 0;
    if (use_editline) {
        cancel_step = 0;
        /* Raw mode before the prompt shows: readline would print it first, and a ^D typed in
         * that gap reaches the cooked line discipline, which turns it into a NUL byte. But
         * readline() takes the mode it finds (now raw) as the one to restore when it returns,
         * so put back the mode from before ourselves: statements that read stdin need line
         * editing and echo. */
        struct termios outside;
        int restore = tcgetattr(STDIN_FILENO, &outside) == 0;
        rl_prep_terminal(1);
        char *line = readline(prompt);
        if (restore) tcsetattr(STDIN_FILENO, TCSADRAIN, &outside);
        if (cancel_step || got_sigint) {
            free(line);
            cancel_step = 0;
            got_sigint = 0;
            return LINE_CANCEL;
        }
        if (!line) return LINE_EOF;
        *out = line;
        return LINE_OK;
    }
    fputs(prompt, stdout);
    fflush(stdout);
    size_t cap = 0;
    ssize_t n = getline(out, &cap, stdin);
    if (n < 0) {
        free(*out);
        *out = NULL;
        if (got_sigint) {
            clearerr(stdin);
            fputs("^C\n", stdout);
            return LINE_CANCEL;
        }
        return LINE_EOF;
    }
    if (n > 0 && (*out)[n - 1] == '\n') (*out)[n - 1] = '\0';
    return LINE_OK;
}

/* }================================================================== */

/* {==================================================================
 * History
 * =================================================================== */

/* The file holds one statement per line, oldest first; a newline inside a multi-line statement
 * is written as "\n" and a backslash as "\\". Plain text, so it is easy to read and grep. */
static void history_write(FILE *f, const char *line) {
    for (const char *p = line; *p; p++) {
        if (*p == '\n') fputs("\\n", f);
        else if (*p == '\\') fputs("\\\\", f);
        else fputc(*p, f);
    }
    fputc('\n', f);
}

static void history_load(void) {
    FILE *f = fopen(history_path, "r");
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n') line[--n] = '\0';
        char *w = line;
        for (char *r = line; *r; r++) {
            if (*r == '\\' && r[1] == 'n') { *w++ = '\n'; r++; }
            else if (*r == '\\' && r[1] == '\\') { *w++ = '\\'; r++; }
            else *w++ = *r;
        }
        *w = '\0';
        if (line[0]) add_history(line);
    }
    free(line);
    fclose(f);
}

static void history_open(void) {
    const char *env = getenv("ANE_HISTORY_FILE");
    const char *home = getenv("HOME");
    if (env) {
        if (env[0]) history_path = strdup(env); /* set but empty: no history file */
    } else if (home && home[0]) {
        size_t n = strlen(home) + sizeof "/.ane_history";
        history_path = malloc(n);
        if (history_path) snprintf(history_path, n, "%s/.ane_history", home);
    }
    using_history();
    stifle_history(HISTORY_MAX);
    if (history_path) history_load();
}

/* Remember a complete statement, in memory and in the file right away (a crash or kill keeps
 * everything typed so far). Repeating the previous statement is not recorded again. */
static void history_add(const char *line) {
    if (!use_editline || !line[0]) return;
    HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
    if (last && last->line && strcmp(last->line, line) == 0) return;
    add_history(line);
    FILE *f = history_path ? fopen(history_path, "a") : NULL;
    if (!f) return;
    history_write(f, line);
    fclose(f);
}

/* Keep the file bounded: once it has grown past twice the limit, rewrite the newest entries. */
static void history_close(void) {
    FILE *f = history_path ? fopen(history_path, "r") : NULL;
    if (f) {
        int lines = 0, c;
        while ((c = fgetc(f)) != EOF) lines += c == '\n';
        fclose(f);
        if (lines > 2 * HISTORY_MAX && (f = fopen(history_path, "w"))) {
            for (int i = 0; i < history_length; i++) {
                HIST_ENTRY *h = history_get(history_base + i);
                if (h && h->line) history_write(f, h->line);
            }
            fclose(f);
        }
    }
    free(history_path);
    history_path = NULL;
}

/* }================================================================== */

/* {==================================================================
 * Completion (the candidates come from ane.host.complete, in Lua)
 * =================================================================== */

static int complete_candidates(lua_State *L) {
    const char *text = lua_tostring(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "ane.host");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "complete");
    lua_pushstring(L, text);
    lua_call(L, 1, 1);
    luaL_checktype(L, -1, LUA_TTABLE);
    return 1;
}

static char *complete_next(const char *text, int state) {
    static int idx;
    lua_State *L = replL;
    if (state == 0) {
        idx = 0;
        lua_pushcfunction(L, complete_candidates);
        lua_pushstring(L, text);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
            lua_pop(L, 1);
            lua_pushnil(L);
        }
        lua_setfield(L, LUA_REGISTRYINDEX, "ane.repl.completions");
    }
    int top = lua_gettop(L);
    char *r = NULL;
    if (lua_getfield(L, LUA_REGISTRYINDEX, "ane.repl.completions") == LUA_TTABLE &&
        lua_rawgeti(L, -1, ++idx) == LUA_TSTRING)
        r = strdup(lua_tostring(L, -1));
    lua_settop(L, top);
    return r;
}

static char **complete(const char *text, int start, int end) {
    (void)start;
    (void)end;
    rl_attempted_completion_over = 1; /* never fall back to file names */
    return rl_completion_matches(text, complete_next);
}

/* }================================================================== */

/* {==================================================================
 * Read, evaluate, print
 * =================================================================== */

static const char *get_prompt(lua_State *L, int firstline, char *buf, size_t n) {
    const char *p = NULL;
    if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TSTRING) p = lua_tostring(L, -1);
    snprintf(buf, n, "%s", p ? p : firstline ? PROMPT1 : PROMPT2);
    lua_pop(L, 1);
    return buf;
}

/* Push the next line; returns LINE_OK, LINE_EOF or LINE_CANCEL (nothing pushed then). */
static int pushline(lua_State *L, int firstline) {
    char prompt[256], *line;
    int r = read_line(get_prompt(L, firstline, prompt, sizeof prompt), &line);
    if (r != LINE_OK) return r;
    lua_pushstring(L, line);
    free(line);
    return LINE_OK;
}

/* Is the syntax error on top a statement cut short by the end of input? */
static int incomplete(lua_State *L, int status) {
    if (status != LUA_ERRSYNTAX) return 0;
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    size_t mark = sizeof EOFMARK - 1;
    return msg && len >= mark && strcmp(msg + len - mark, EOFMARK) == 0;
}

/* The line at the top, compiled as `return <line>;`; on success the function replaces nothing
 * and is pushed above the line. */
static int addreturn(lua_State *L) {
    const char *line = lua_tostring(L, -1);
    const char *ret = lua_pushfstring(L, "return %s;", line);
    int status = host_loadbuffer(L, ret, strlen(ret), "=stdin");
    lua_remove(L, -2); /* the modified line */
    if (status == LUA_OK) {
        history_add(line);
    } else {
        lua_pop(L, 1);
    }
    return status;
}

/* The code at index idx compiled as a statement, reading continuation lines while it is
 * incomplete. Leaves the function or the error message on top (or nothing on REPL_CANCEL). */
static int multiline(lua_State *L, int idx) {
    for (;;) {
        size_t len;
        const char *code = lua_tolstring(L, idx, &len);
        int status = host_loadbuffer(L, code, len, "=stdin");
        if (!incomplete(L, status)) {
            history_add(code);
            return status;
        }
        int r = pushline(L, 0);
        if (r == LINE_EOF) {
            history_add(code);
            return status; /* report the "<eof>" error */
        }
        if (r == LINE_CANCEL) {
            lua_pop(L, 1);
            return REPL_CANCEL;
        }
        lua_remove(L, -2); /* the error message */
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3); /* idx is the third from the top: code .. "\n" .. line */
    }
}

/* Read and compile one statement: pushes a function (LUA_OK) or an error message, or nothing
 * (REPL_EOF, REPL_CANCEL). */
static int loadline(lua_State *L) {
    int base = lua_gettop(L);
    int r = pushline(L, 1);
    if (r == LINE_EOF) return REPL_EOF;
    if (r == LINE_CANCEL) return REPL_CANCEL;
    int status = addreturn(L);
    if (status != LUA_OK) status = multiline(L, base + 1);
    if (status == REPL_CANCEL) {
        lua_settop(L, base);
        return status;
    }
    lua_remove(L, base + 1); /* the line */
    return status;
}

/* Protected: print the values on the stack, tab-separated (ane.host.format when available). */
static int print_values(lua_State *L) {
    int n = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "ane.host");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1) &&
        lua_getfield(L, -1, "format") == LUA_TFUNCTION) {
        lua_insert(L, 1);
        lua_pop(L, 1); /* the module */
        lua_call(L, n, 1);
        size_t len;
        const char *s = luaL_checklstring(L, -1, &len);
        fwrite(s, 1, len, stdout);
    } else {
        lua_settop(L, n);
        for (int i = 1; i <= n; i++) {
            size_t len;
            const char *s = luaL_tolstring(L, i, &len);
            if (i > 1) fputc('\t', stdout);
            fwrite(s, 1, len, stdout);
            lua_pop(L, 1);
        }
    }
    fputc('\n', stdout);
    fflush(stdout);
    return 0;
}

void host_repl(lua_State *L) {
    use_editline = isatty(STDIN_FILENO);
    replL = L;
    /* libedit encodes what it returns with the locale's charset. */
    setlocale(LC_CTYPE, "");
    if (use_editline) {
        rl_readline_name = "ane";
        rl_catch_signals = 0;
        rl_getc_function = repl_getc;
        rl_attempted_completion_function = complete;
        rl_basic_word_break_characters = " \t\n\"\\'`><=;+-*/%^~#&|,{}()[]";
        rl_completion_append_character = '\0';
        rl_initialize();
        history_open();
    }
    /* The convenience a person expects at the prompt: `ane` is there already. Scripts still
     * `require "ane"` themselves (nothing is added to _G outside the REPL). */
    lua_getglobal(L, "ane");
    if (lua_isnil(L, -1)) {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "ane");
        if (lua_pcall(L, 1, 1, 0) == LUA_OK) lua_setglobal(L, "ane");
        else lua_pop(L, 1); /* not found: the REPL still works for plain Lua */
    }
    lua_pop(L, 1);

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint; /* no SA_RESTART: a blocked read must return */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    sigset_t intr, oldmask;
    sigemptyset(&intr);
    sigaddset(&intr, SIGINT);
    if (use_editline) {
        key_fd = open_keys();
        pthread_sigmask(SIG_BLOCK, &intr, &oldmask);
        wait_mask = oldmask;
        sigdelset(&wait_mask, SIGINT);
    }

    int top = lua_gettop(L), status;
    while ((status = loadline(L)) != REPL_EOF) {
        if (status == REPL_CANCEL) continue;
        if (status == LUA_OK) {
            int base = lua_gettop(L) - 1;
            status = host_docall(L, 0, LUA_MULTRET);
            int n = lua_gettop(L) - base;
            if (status == LUA_OK && n > 0) {
                lua_pushcfunction(L, print_values);
                lua_insert(L, base + 1);
                status = host_docall(L, n, 0);
            }
        }
        host_report(L, NULL, status);
        lua_settop(L, top);
    }
    if (use_editline) {
        pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
        if (key_fd != STDIN_FILENO) close(key_fd);
        key_fd = -1;
    }
    sigaction(SIGINT, &old, NULL);
    if (use_editline) history_close();
    fputc('\n', stdout);
    fflush(stdout);
}

/* }================================================================== */
