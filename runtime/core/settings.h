/* settings.h - what the environment says, read once.
 *
 * The runtime's environment variables are read the first time settings_get() runs (the Lua
 * module's opener and ane_open call it at start-up) and never again, and the runtime never
 * writes the environment: setenv/getenv on two threads at once is a data race in every libc,
 * and compile workers run beside the Lua thread. Choices made later (ane.backend(name),
 * --backend, ane_options.backend) live in the runtime's own state (backend_set_default). */
#ifndef ANE_CORE_SETTINGS_H
#define ANE_CORE_SETTINGS_H

typedef struct ane_settings {
    const char *backend;  /* $ANE_BACKEND, NULL when unset or empty (a private copy) */
    int cpu_profile;      /* $ANE_CPU_PROFILE=1: cpu kernels print a per-op profile when freed */
    int precision_fp32;   /* $ANE_PRECISION=fp32: the default compile precision */
    int strict;           /* $ANE_STRICT set and not "0": strict mode by default */
    int cpu_threads;      /* $ANE_CPU_THREADS > 0: the cpu pool's size; else 0 (one per core) */
} ane_settings;

/* The settings; the first call (from any thread) reads the environment. Never NULL. */
const ane_settings *settings_get(void);

#endif
