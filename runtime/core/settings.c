/* settings.c - the environment, read once (settings.h). */
#include "settings.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static ane_settings S;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void read_env(void) {
    const char *b = getenv("ANE_BACKEND");
    S.backend = (b && *b) ? strdup(b) : NULL; /* a copy: the environment may change later */
    const char *p = getenv("ANE_CPU_PROFILE");
    S.cpu_profile = p && strcmp(p, "1") == 0;
    const char *prec = getenv("ANE_PRECISION");
    S.precision_fp32 = prec && strcmp(prec, "fp32") == 0;
    const char *s = getenv("ANE_STRICT");
    S.strict = s && *s && strcmp(s, "0") != 0;
    const char *t = getenv("ANE_CPU_THREADS");
    S.cpu_threads = (t && atoi(t) > 0) ? atoi(t) : 0;
}

const ane_settings *settings_get(void) {
    pthread_once(&once, read_env);
    return &S;
}
