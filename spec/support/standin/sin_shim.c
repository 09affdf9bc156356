/* sin_shim.c - runtime functions Apple's libobjc exports but GCC's keeps inline-only.
 *
 * GCC's <objc/runtime.h> defines object_getClass as a static inline (the isa word), so libobjc
 * has no such symbol for dlsym. The stand-in exports one with the same meaning. This file must
 * not include <objc/runtime.h>, whose inline definition would clash with this one. */
#include <stddef.h>

void *object_getClass(void *obj);
void *object_getClass(void *obj) { return obj ? *(void **)obj : NULL; }
