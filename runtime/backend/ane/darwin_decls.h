/* darwin_decls.h - our own declarations of the Apple APIs the ANE backend calls directly.
 *
 * Used only by `make check-darwin`, which compiles the backend on Linux as the macOS build
 * (-D__APPLE__ -DANE_CHECK_DARWIN -fsyntax-only) so that a mistake in a macOS-only line fails
 * here. Everything else Apple-specific (the Objective-C runtime, Foundation, IOSurface, the
 * private framework) is reached through dlsym with the types of objc_bridge.h, on both systems.
 * Prototypes are copied from the documented signatures, not from Apple's headers. */
#ifndef ANE_BACKEND_ANE_DARWIN_DECLS_H
#define ANE_BACKEND_ANE_DARWIN_DECLS_H

#include <stddef.h>

/* <sys/sysctl.h> */
int sysctlbyname(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

#endif
