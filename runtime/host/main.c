/* main.c - the `ane` program: run scripts, -e/-l/-i/-v, subcommands, and the REPL.
 *
 * Like lua.c, everything (even opening the libraries) runs inside one protected call so that no
 * error escapes unprotected; SIGINT during a call raises a Lua error at the next safe point. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ane.h"
#include "host.h"

static const char *progname = "ane";
static lua_State *globalL = NULL;

/* ---- interruption: the signal handler only installs a hook; the hook raises the error ---- */
static void lstop(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

static void laction(int i) {
    int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    signal(i, SIG_DFL); /* a second ^C kills */
    lua_sethook(globalL, lstop, flag, 1);
}

static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int host_docall(lua_State *L, int narg, int nres) {
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    globalL = L;
    signal(SIGINT, laction);
    int status = lua_pcall(L, narg, nres, base);
    signal(SIGINT, SIG_DFL);
    lua_remove(L, base);
    return status;
}

void host_report(lua_State *L, const char *pname, int status) {
    if (status == LUA_OK) return;
    const char *msg = lua_tostring(L, -1);
    if (!msg) msg = "(error object is not a string)";
    if (pname) fprintf(stderr, "%s: ", pname);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    lua_pop(L, 1);
}

static void print_usage(const char *badoption) {
    if (badoption) fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badoption);
    fprintf(stderr,
            "usage: %s [options] [script [args]]\n"
            "       %s info | mil ... | selftest\n"
            "Available options are:\n"
            "  -e stat         execute string 'stat'\n"
            "  -i              enter interactive mode after executing 'script'\n"
            "  -l mod          require library 'mod' into global 'mod'\n"
            "  -v              show version information\n"
            "  --backend NAME  default backend (also $ANE_BACKEND)\n"
            "  --              stop handling options\n"
            "  -               stop handling options and execute stdin\n",
            progname, progname);
}

static int dochunk(lua_State *L, int status) {
    if (status == LUA_OK) status = host_docall(L, 0, 0);
    host_report(L, progname, status);
    return status == LUA_OK;
}

/* Set the global `arg` as lua.c does: script at 0, its arguments at 1.., interpreter before. */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
    if (script == argc) script = 0;
    lua_createtable(L, argc - (script + 1), script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* Find the project's Lua modules from the build tree (<exe>/../lua) and after install
 * (<exe>/../share/lua/5.4). */
static void set_paths(lua_State *L, const char *argv0) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        if (!realpath(argv0, exe)) return;
    } else {
        exe[n] = '\0';
    }
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = '\0'; /* exe is now the directory holding the binary */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s;%s/../lua/?.lua;%s/../lua/?/init.lua;%s/../share/lua/5.4/?.lua;%s/../share/lua/5.4/?/init.lua",
                    lua_tostring(L, -1), exe, exe, exe, exe);
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
}

static int handle_subcommand(lua_State *L, int argc, char **argv) {
    /* `ane info`, `ane mil ...`, `ane selftest`: implemented in Lua as ane.cli.<name>. */
    lua_getglobal(L, "require");
    lua_pushfstring(L, "ane.cli.%s", argv[1]);
    int status = host_docall(L, 1, 1);
    if (status != LUA_OK) { host_report(L, progname, status); return 0; }
    lua_newtable(L);
    for (int i = 2; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    status = host_docall(L, 1, 1);
    if (status != LUA_OK) { host_report(L, progname, status); return 0; }
    int ok = lua_isinteger(L, -1) ? lua_tointeger(L, -1) == 0 : lua_toboolean(L, -1) || lua_isnil(L, -1);
    lua_pop(L, 1);
    return ok;
}

static int is_subcommand(const char *s) {
    static const char *const subs[] = {"info", "mil", "selftest", NULL};
    for (const char *const *p = subs; *p; p++)
        if (strcmp(*p, s) == 0) return 1;
    return 0;
}

static int pmain(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    luaL_checkversion(L);
    luaL_openlibs(L);
    luaopen_ane(L); /* preload ane.core; fails loudly if lua/ane is not found */
    lua_pop(L, 1);
    set_paths(L, argv[0]);

    int i, script = 0, interactive = 0, version = 0, has_e = 0, stdin_script = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') { script = i; break; }
        if (strcmp(a, "--") == 0) { if (i + 1 < argc) script = i + 1; break; }
        if (strcmp(a, "-") == 0) { stdin_script = 1; script = i; break; }
        if (strcmp(a, "-i") == 0) interactive = 1;
        else if (strcmp(a, "-v") == 0) version = 1;
        else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
            if (++i >= argc) { print_usage(a); return 0; }
            if (a[1] == 'e') has_e = 1;
        } else if (strcmp(a, "--backend") == 0) {
            if (++i >= argc) { print_usage(a); return 0; }
        } else { print_usage(a); return 0; }
    }
    if (version) printf("ane %s (%s)\n", ane_version(), LUA_RELEASE);
    createargtable(L, argv, argc, script);

    /* run -e, -l, --backend in order */
    for (int j = 1; j < (script ? script : argc); j++) {
        const char *a = argv[j];
        if (strcmp(a, "-e") == 0) {
            const char *chunk = argv[++j];
            if (!dochunk(L, luaL_loadbuffer(L, chunk, strlen(chunk), "=(command line)"))) return 0;
        } else if (strcmp(a, "-l") == 0) {
            const char *mod = argv[++j];
            lua_getglobal(L, "require");
            lua_pushstring(L, mod);
            int st = host_docall(L, 1, 1);
            if (st != LUA_OK) { host_report(L, progname, st); return 0; }
            lua_setglobal(L, mod);
        } else if (strcmp(a, "--backend") == 0) {
            lua_getglobal(L, "require");
            lua_pushliteral(L, "ane");
            lua_call(L, 1, 1);
            lua_getfield(L, -1, "backend");
            if (lua_isfunction(L, -1)) {
                lua_pushstring(L, argv[++j]);
                int st = host_docall(L, 1, 0);
                if (st != LUA_OK) { host_report(L, progname, st); return 0; }
            } else { lua_pop(L, 1); j++; }
            lua_pop(L, 1);
        }
    }

    if (script) {
        if (!stdin_script && is_subcommand(argv[script]) && !has_e) {
            lua_pushboolean(L, handle_subcommand(L, argc - script + 1, argv + script - 1));
            return 1;
        }
        const char *fname = stdin_script ? NULL : argv[script];
        int st = luaL_loadfile(L, fname);
        if (st == LUA_OK) {
            int n = argc - script - 1;
            luaL_checkstack(L, n + 3, "too many arguments to script");
            for (int j = script + 1; j < argc; j++) lua_pushstring(L, argv[j]);
            st = host_docall(L, n, LUA_MULTRET);
        }
        if (st != LUA_OK) { host_report(L, progname, st); return 0; }
    }
    if (interactive) host_repl(L);
    else if (script == 0 && !has_e && !version) {
        if (isatty(0)) host_repl(L);
        else dochunk(L, luaL_loadfile(L, NULL));
    }
    lua_pushboolean(L, 1);
    return 1;
}

int main(int argc, char **argv) {
    if (argv[0] && argv[0][0]) progname = "ane";
    for (int i = 1; i + 1 < argc; i++) /* --backend before the state exists: becomes ANE_BACKEND */
        if (strcmp(argv[i], "--backend") == 0) setenv("ANE_BACKEND", argv[i + 1], 1);
    lua_State *L = luaL_newstate();
    if (!L) { fprintf(stderr, "%s: cannot create state: not enough memory\n", progname); return EXIT_FAILURE; }
    lua_gc(L, LUA_GCSTOP);
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    lua_gc(L, LUA_GCRESTART);
    lua_gc(L, LUA_GCGEN, 0, 0);
    int status = lua_pcall(L, 2, 1, 0);
    int ok = lua_toboolean(L, -1);
    host_report(L, progname, status);
    lua_close(L);
    return (ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
