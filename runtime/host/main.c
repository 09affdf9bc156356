/* main.c - the `ane` program: run scripts, -e/-l/-i/-v, subcommands, and the REPL.
 *
 * Like lua.c, everything (even opening the libraries) runs inside one protected call so that no
 * error escapes unprotected; SIGINT during a call only installs a hook, and the hook raises a Lua
 * error at the next safe point (never touch the lua_State from the signal handler itself).
 *
 * The process has other threads (OpenBLAS starts its pool before main, the runtime starts
 * workers), and the terminal's SIGINT goes to the whole process: the kernel may run the handler
 * on any thread that does not block it. Handlers therefore first hand the signal on to the Lua
 * thread (host_forward_signal), so the hook is set by the thread that runs Lua and a REPL that
 * holds SIGINT blocked still sees it when it unblocks. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

#include "../backend/backend.h"
#include "../lua/lane.h"
#include "ane.h"
#include "host.h"

static const char *const progname = "ane";
static lua_State *globalL = NULL;
static pthread_t lua_thread; /* the thread that runs main() and every Lua call */

/* {==================================================================
 * Protected calls, interruption, error reports
 * =================================================================== */

/* Runs inside the interrupted function; the message names the innermost Lua line (the hook
 * may fire as a C function such as print returns, which has no line of its own). */
static void lstop(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    lua_Debug d;
    int level = 0;
    while (lua_getstack(L, level, &d) && lua_getinfo(L, "l", &d) && d.currentline <= 0) level++;
    luaL_where(L, level);
    lua_pushliteral(L, "interrupted!");
    lua_concat(L, 2);
    lua_error(L);
}

int host_forward_signal(int sig) {
    if (pthread_equal(pthread_self(), lua_thread)) return 0;
    pthread_kill(lua_thread, sig); /* async-signal-safe; pending there until it unblocks sig */
    return 1;
}

static void laction(int sig) {
    if (host_forward_signal(sig)) return;
    int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    signal(sig, SIG_DFL); /* a second ^C kills the process */
    lua_sethook(globalL, lstop, flag, 1);
}

int host_docall(lua_State *L, int narg, int nres) {
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, host_msghandler);
    lua_insert(L, base);
    globalL = L;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = laction;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    /* The REPL keeps SIGINT blocked outside its key wait, so a ^C typed after Enter but before
     * the statement starts is pending now and interrupts this call instead of being lost. */
    sigset_t intr, oldmask;
    sigemptyset(&intr);
    sigaddset(&intr, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &intr, &oldmask);
    int status = lua_pcall(L, narg, nres, base);
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    sigaction(SIGINT, &old, NULL);
    /* A ^C that arrived as the call finished must not interrupt the next one. */
    if (lua_gethook(L) == lstop) lua_sethook(L, NULL, 0, 0);
    lua_remove(L, base);
    return status;
}

void host_report(lua_State *L, const char *pname, int status) {
    if (status == LUA_OK) return;
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = "(error object is not a string)";
    if (pname) fprintf(stderr, "%s: ", pname);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    lua_pop(L, 1);
}

/* }================================================================== */

static void print_usage(FILE *out, const char *badoption) {
    if (badoption) {
        if (badoption[1] == 'e' || badoption[1] == 'l' || strcmp(badoption, "--backend") == 0)
            fprintf(stderr, "%s: '%s' needs argument\n", progname, badoption);
        else
            fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badoption);
    }
    fprintf(out,
            "usage: %s [options] [script [args]]\n"
            "       %s info | mil | selftest [args]   (each takes --help)\n"
            "Available options are:\n"
            "  -e stat         execute string 'stat'\n"
            "  -i              enter interactive mode after executing 'script'\n"
            "  -l mod          require library 'mod' into global 'mod'\n"
            "  -l g=mod        require library 'mod' into global 'g'\n"
            "  -v              show version information\n"
            "  -W              turn warnings on\n"
            "  --backend NAME  default backend, e.g. cpu or ane (else $ANE_BACKEND, else automatic);\n"
            "                  a name that is no backend is an error listing the known ones\n"
            "  --bytecode      also load precompiled Lua chunks (default: source only, since a\n"
            "                  damaged or crafted chunk can crash the process)\n"
            "  -h, --help      show this help\n"
            "  --              stop handling options\n"
            "  -               stop handling options and execute stdin\n"
            "A subcommand word (info, mil, selftest) always means the subcommand, even when a file of\n"
            "that name exists: run such a file as `%s ./mil`.\n"
            "With no script and no -e, `ane` starts the REPL on a terminal and runs stdin otherwise.\n",
            progname, progname, progname);
}

static void print_version(void) {
    printf("ane %s (%s)\n", ane_version(), LUA_RELEASE);
    fflush(stdout);
}

static int dochunk(lua_State *L, int status) {
    if (status == LUA_OK) status = host_docall(L, 0, 0);
    host_report(L, progname, status);
    return status == LUA_OK;
}

/* The global `arg` as lua.c sets it: script at 0, its arguments at 1.., interpreter and options
 * at negative indices. With no script (script == 0) the interpreter is at 0. */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
    lua_createtable(L, argc - (script + 1), script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* {==================================================================
 * Module search paths
 * =================================================================== */

/* Directory holding the running binary, or "" if it cannot be found. */
static void exe_dir(const char *argv0, char *out, size_t n) {
    char buf[PATH_MAX];
    out[0] = '\0';
#if defined(__APPLE__)
    uint32_t sz = sizeof buf;
    char raw[PATH_MAX];
    if (_NSGetExecutablePath(raw, &sz) != 0 || !realpath(raw, buf)) return;
#else
    ssize_t len = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (len > 0) {
        buf[len] = '\0';
    } else if (!argv0 || !strchr(argv0, '/') || !realpath(argv0, buf)) {
        return;
    }
#endif
    char *slash = strrchr(buf, '/');
    if (!slash) return;
    *slash = '\0';
    snprintf(out, n, "%s", buf);
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* Put the project's Lua modules first on package.path: from the build tree (<bindir>/../lua)
 * and from an installed prefix (<prefix>/bin/ane -> <prefix>/share/lua/5.4). Only directories
 * that hold ane/init.lua are added, so stray paths never shadow the user's own modules. */
static void set_paths(lua_State *L, const char *argv0) {
    char dir[PATH_MAX], up[PATH_MAX + 4], root[PATH_MAX], probe[PATH_MAX + 64];
    exe_dir(argv0, dir, sizeof dir);
    snprintf(up, sizeof up, "%s/..", dir);
    if (!dir[0] || !realpath(up, root)) return;
    luaL_Buffer b;
    lua_getglobal(L, "package");
    int pkg = lua_gettop(L); /* absolute: the buffer may take stack slots above it */
    luaL_buffinit(L, &b);
    static const char *const trees[] = {"lua", "share/lua/5.4"};
    for (int i = 0; i < 2; i++) {
        snprintf(probe, sizeof probe, "%s/%s/ane/init.lua", root, trees[i]);
        if (!file_exists(probe)) continue;
        lua_pushfstring(L, "%s/%s/?.lua;%s/%s/?/init.lua;", root, trees[i], root, trees[i]);
        luaL_addvalue(&b);
    }
    lua_getfield(L, pkg, "path");
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    lua_setfield(L, pkg, "path");
    /* Other native modules installed next to ours. ane.core itself is linked in (preloaded). */
    snprintf(probe, sizeof probe, "%s/lib/lua/5.4", root);
    if (file_exists(probe)) {
        lua_getfield(L, pkg, "cpath");
        lua_pushfstring(L, "%s/?.so;%s", probe, lua_tostring(L, -1));
        lua_setfield(L, pkg, "cpath");
        lua_pop(L, 1);
    }
    lua_settop(L, pkg - 1);
}

/* }================================================================== */

/* `ane NAME args...` runs the Lua module ane.cli.NAME when NAME is a plain word (lower-case
 * letters, digits, '_') and that module exists, even if a file NAME exists too: the subcommand
 * wins, and `ane ./NAME` runs the file. The module returns function(args) -> exit code (integer;
 * nil/true = 0, false = 1). */
static int is_subcommand(lua_State *L, const char *name) {
    if (!name[0]) return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return 0;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushfstring(L, "ane.cli.%s", name);
    lua_getfield(L, -3, "path");
    lua_call(L, 2, 1);
    int found = lua_isstring(L, -1);
    lua_pop(L, 2);
    return found;
}

static int run_subcommand(lua_State *L, int argc, char **argv) {
    lua_getglobal(L, "require");
    lua_pushfstring(L, "ane.cli.%s", argv[0]);
    int status = host_docall(L, 1, 1);
    if (status != LUA_OK) { host_report(L, progname, status); return 1; }
    if (!lua_isfunction(L, -1)) {
        fprintf(stderr, "%s: module ane.cli.%s does not return a function\n", progname, argv[0]);
        return 1;
    }
    lua_createtable(L, argc - 1, 0);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    status = host_docall(L, 1, 1);
    if (status != LUA_OK) { host_report(L, progname, status); return 1; }
    int code;
    if (lua_isinteger(L, -1)) code = (int)lua_tointeger(L, -1);
    else code = (lua_isnil(L, -1) || lua_toboolean(L, -1)) ? 0 : 1;
    lua_pop(L, 1);
    return code;
}

/* The default backend, before anything runs: --backend NAME (the last one given) must name an
 * available backend; without it an $ANE_BACKEND that names no backend is refused the same way.
 * The choice is the runtime's own setting (backend_set_default), never written to the
 * environment: compile workers read settings while the Lua thread runs (runtime/core/settings.h). */
static int choose_backend(const char *name) {
    ane_error e;
    err_clear(&e);
    if (!name) {
        const backend *d;
        if (backend_default_ex(&d, &e) == 0) return 1;
        fprintf(stderr, "%s: %s\n", progname, e.msg);
        return 0;
    }
    const backend *b = backend_get(name);
    if (!b) {
        backend_unknown(&e, name, "--backend");
        fprintf(stderr, "%s: %s\n", progname, e.msg);
        return 0;
    }
    char why[256] = "";
    if (b->available && !b->available(why, sizeof why)) {
        fprintf(stderr, "%s: --backend %s: backend '%s' is not available here: %s\n", progname, name, name, why);
        return 0;
    }
    backend_set_default(b);
    return 1;
}

static int dolibrary(lua_State *L, const char *spec) {
    const char *eq = strchr(spec, '=');
    const char *mod = eq ? eq + 1 : spec;
    lua_getglobal(L, "require");
    lua_pushstring(L, mod);
    int status = host_docall(L, 1, 1);
    if (status != LUA_OK) { host_report(L, progname, status); return 0; }
    if (eq) lua_pushlstring(L, spec, (size_t)(eq - spec));
    else lua_pushstring(L, spec);
    lua_insert(L, -2);
    lua_setglobal(L, lua_tostring(L, -2));
    lua_pop(L, 1);
    return 1;
}

enum { HAS_E = 1, HAS_I = 2, HAS_V = 4, HAS_W = 8, HAS_H = 16, HAS_STDIN = 32, BAD = 64, HAS_B = 128 };

/* Scan options; *script receives the index of the script (0 if none). On a bad option, *bad
 * receives its index. */
static int collectargs(int argc, char **argv, int *script, int *bad) {
    int flags = 0;
    *script = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') { *script = i; return flags; }
        if (strcmp(a, "--") == 0) { if (i + 1 < argc) *script = i + 1; return flags; }
        if (strcmp(a, "-") == 0) { *script = i; return flags | HAS_STDIN; }
        if (strcmp(a, "-i") == 0) flags |= HAS_I | HAS_V;
        else if (strcmp(a, "-v") == 0) flags |= HAS_V;
        else if (strcmp(a, "-W") == 0) flags |= HAS_W;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) flags |= HAS_H;
        else if (strcmp(a, "--bytecode") == 0) flags |= HAS_B;
        else if (strncmp(a, "--backend=", 10) == 0) continue;
        else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0 || strcmp(a, "--backend") == 0) {
            if (i + 1 >= argc) { *bad = i; return flags | BAD; }
            if (a[1] == 'e') flags |= HAS_E;
            i++;
        } else if ((a[1] == 'e' || a[1] == 'l') && a[2]) { /* -eCODE, -lmod */
            if (a[1] == 'e') flags |= HAS_E;
        } else {
            *bad = i;
            return flags | BAD;
        }
    }
    return flags;
}

/* The NAME of the last --backend option before the script, or NULL. */
static const char *backend_option(char **argv, int n) {
    const char *name = NULL;
    for (int i = 1; i < n; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) i++;
        else if (strcmp(a, "--backend") == 0) name = argv[++i];
        else if (strncmp(a, "--backend=", 10) == 0) name = a + 10;
    }
    return name;
}

/* -e, -l and -W, in the order given (--backend was applied before: choose_backend). */
static int runargs(lua_State *L, char **argv, int n) {
    for (int i = 1; i < n; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-e") == 0 || (a[1] == 'e' && a[2])) {
            const char *chunk = a[2] ? a + 2 : argv[++i];
            if (!dochunk(L, host_loadbuffer(L, chunk, strlen(chunk), "=(command line)"))) return 0;
        } else if (strcmp(a, "-l") == 0 || (a[1] == 'l' && a[2])) {
            if (!dolibrary(L, a[2] ? a + 2 : argv[++i])) return 0;
        } else if (strcmp(a, "-W") == 0) {
            lua_warning(L, "@on", 0);
        } else if (strcmp(a, "--backend") == 0) {
            i++;
        }
    }
    return 1;
}

static int handle_script(lua_State *L, char **argv, int script, int argc, int from_stdin) {
    const char *fname = from_stdin ? NULL : argv[script];
    int status = host_loadfile(L, fname);
    if (status == LUA_OK) {
        int n = argc - script - 1;
        luaL_checkstack(L, n + 3, "too many arguments to script");
        for (int j = script + 1; j < argc; j++) lua_pushstring(L, argv[j]);
        status = host_docall(L, n, 0);
    }
    host_report(L, progname, status);
    return status == LUA_OK;
}

/* Everything runs here, protected; returns the exit status as an integer. */
static int pmain(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    int script, bad = 0;
    int flags = collectargs(argc, argv, &script, &bad);
    luaL_checkversion(L);
    if (flags & BAD) { print_usage(stderr, argv[bad]); lua_pushinteger(L, 1); return 1; }
    if (flags & HAS_H) { print_usage(stdout, NULL); lua_pushinteger(L, 0); return 1; }
    luaL_openlibs(L);
    host_preload(L);
    host_set_load_mode(L, flags & HAS_B);
    set_paths(L, argv[0]);
    if (!choose_backend(backend_option(argv, script ? script : argc))) { lua_pushinteger(L, 1); return 1; }
    if (flags & HAS_V) print_version();
    createargtable(L, argv, argc, script);
    lua_gc(L, LUA_GCRESTART);
    lua_gc(L, LUA_GCGEN, 0, 0);
    if (!runargs(L, argv, script ? script : argc)) { lua_pushinteger(L, 1); return 1; }
    if (script) {
        if (!(flags & HAS_STDIN) && is_subcommand(L, argv[script])) {
            lua_pushinteger(L, run_subcommand(L, argc - script, argv + script));
            return 1;
        }
        if (!handle_script(L, argv, script, argc, flags & HAS_STDIN)) {
            lua_pushinteger(L, 1);
            return 1;
        }
    }
    if (flags & HAS_I) {
        host_repl(L);
    } else if (script == 0 && !(flags & (HAS_E | HAS_V))) {
        if (isatty(0)) {
            print_version();
            host_repl(L);
        } else if (!dochunk(L, host_loadfile(L, NULL))) {
            lua_pushinteger(L, 1);
            return 1;
        }
    }
    lua_pushinteger(L, 0);
    return 1;
}

int main(int argc, char **argv) {
    lua_thread = pthread_self();
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
        return EXIT_FAILURE;
    }
    lua_gc(L, LUA_GCSTOP); /* no collections while the libraries open (pmain restarts it) */
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    int code = status == LUA_OK ? (int)lua_tointeger(L, -1) : 1;
    host_report(L, progname, status);
    lua_close(L);
    return code;
}
