/* ptydrive.c - run a program on a pseudo-terminal and type at it, for the REPL specs.
 *
 *   ptydrive SCRIPT -- program args...
 *
 * SCRIPT has one command per line:
 *   send TEXT     write TEXT to the terminal (C escapes: \n \r \t \e \\ \xHH; ^C is \x03)
 *   expect TEXT   wait until TEXT (same escapes) appears in the output after the last match
 *   wait          wait for the program to exit
 * Output has "\r" removed before matching. At the end the whole transcript goes to stdout.
 * Exit status: the program's (128+N if killed by signal N); 125 if an expect or wait timed out
 * ($PTYDRIVE_TIMEOUT seconds, default 30) or the driver failed, with the reason on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static char *out;
static size_t out_len, out_cap, matched;
static int master = -1;
static pid_t child;
static int child_status = -1;
static double timeout_s = 30;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fail(const char *what, const char *detail) {
    fwrite(out, 1, out_len, stdout);
    fprintf(stderr, "ptydrive: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    if (child > 0 && child_status < 0) kill(child, SIGKILL);
    exit(125);
}

static void append(const char *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\r') continue;
        if (out_len + 1 >= out_cap) {
            out_cap = out_cap ? out_cap * 2 : 4096;
            out = realloc(out, out_cap);
            if (!out) fail("out of memory", NULL);
        }
        out[out_len++] = buf[i];
    }
    if (out) out[out_len] = '\0';
}

/* Read whatever is available within ms milliseconds; returns 0 once the terminal is closed. */
static int pump(int ms) {
    struct pollfd p = {.fd = master, .events = POLLIN};
    int r = poll(&p, 1, ms);
    if (r < 0 && errno != EINTR) fail("poll", strerror(errno));
    if (r <= 0) return 1;
    char buf[4096];
    ssize_t n = read(master, buf, sizeof buf);
    if (n > 0) { append(buf, (size_t)n); return 1; }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
    return 0; /* EOF or EIO: the slave side is gone */
}

static void reap(int block) {
    if (child_status >= 0) return;
    int st;
    if (waitpid(child, &st, block ? 0 : WNOHANG) == child) child_status = st;
}

static size_t unescape(const char *s, char *dst) {
    size_t n = 0;
    for (; *s; s++) {
        if (*s != '\\' || !s[1]) { dst[n++] = *s; continue; }
        s++;
        switch (*s) {
        case 'n': dst[n++] = '\n'; break;
        case 'r': dst[n++] = '\r'; break;
        case 't': dst[n++] = '\t'; break;
        case 'e': dst[n++] = 27; break;
        case 'x': {
            char hex[3] = {s[1], s[1] ? s[2] : 0, 0};
            dst[n++] = (char)strtol(hex, NULL, 16);
            s += 2;
            break;
        }
        default: dst[n++] = *s; break;
        }
    }
    dst[n] = '\0';
    return n;
}

static void do_expect(const char *text) {
    double end = now() + timeout_s;
    int open = 1;
    for (;;) {
        char *hit = out ? strstr(out + matched, text) : NULL;
        if (hit) { matched = (size_t)(hit - out) + strlen(text); return; }
        if (!open) fail("output ended before", text);
        if (now() > end) fail("timed out waiting for", text);
        open = pump(100);
    }
}

static void do_wait(void) {
    double end = now() + timeout_s;
    while (pump(50)) {
        reap(0);
        if (child_status >= 0) break;
        if (now() > end) fail("timed out waiting for the program to exit", NULL);
    }
    while (pump(0)) {} /* drain */
    reap(1);
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: ptydrive SCRIPT -- program args...\n");
        return 125;
    }
    const char *t = getenv("PTYDRIVE_TIMEOUT");
    if (t && atof(t) > 0) timeout_s = atof(t);
    FILE *script = fopen(argv[1], "r");
    if (!script) { perror(argv[1]); return 125; }

    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) { perror("pty"); return 125; }
    const char *slave_name = ptsname(master);
    child = fork();
    if (child < 0) { perror("fork"); return 125; }
    if (child == 0) {
        setsid(); /* new session, so the pty becomes the controlling terminal and ^C reaches us */
        int slave = open(slave_name, O_RDWR);
        if (slave < 0) _exit(126);
#ifdef TIOCSCTTY
        ioctl(slave, TIOCSCTTY, 0);
#endif
        struct winsize ws = {.ws_row = 24, .ws_col = 200};
        ioctl(slave, TIOCSWINSZ, &ws);
        dup2(slave, 0);
        dup2(slave, 1);
        dup2(slave, 2);
        if (slave > 2) close(slave);
        close(master);
        execvp(argv[3], argv + 3);
        _exit(127);
    }

    char line[8192], text[8192];
    while (fgets(line, sizeof line, script)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = '\0';
        if (n == 0 || line[0] == '#') continue;
        if (strncmp(line, "send ", 5) == 0) {
            size_t len = unescape(line + 5, text);
            if (write(master, text, len) != (ssize_t)len) fail("write to the terminal failed", NULL);
            pump(0);
        } else if (strncmp(line, "expect ", 7) == 0) {
            unescape(line + 7, text);
            do_expect(text);
        } else if (strcmp(line, "wait") == 0) {
            do_wait();
        } else {
            fail("unknown script command", line);
        }
    }
    fclose(script);
    if (child_status < 0) do_wait();
    fwrite(out ? out : "", 1, out_len, stdout);
    free(out);
    if (WIFEXITED(child_status)) return WEXITSTATUS(child_status);
    if (WIFSIGNALED(child_status)) return 128 + WTERMSIG(child_status);
    return 125;
}
