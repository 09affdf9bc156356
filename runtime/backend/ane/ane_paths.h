/* ane_paths.h - the only platform switch of the ANE backend: which images to load.
 *
 * macOS: Apple's private framework (ane-private-api.md 1) plus Foundation and IOSurface, which
 * provide the classes, IOSurfaceCreate & co and the kIOSurface* keys; $ANE_FRAMEWORK_PATH
 * overrides the framework's path.
 * Elsewhere there is no default: Apple's framework exists only on macOS, and the backend reports
 * itself unavailable with ANE_NO_FRAMEWORK_WHY. The stand-in library built by mk/ane.mk (test
 * support, spec/support/standin: it provides all of the above) is loaded only when
 * $ANE_FRAMEWORK_PATH names it, and every report then says so ("ane (stand-in at PATH)"). */
#ifndef ANE_BACKEND_ANE_PATHS_H
#define ANE_BACKEND_ANE_PATHS_H

#if defined(__APPLE__)
#ifndef ANE_FRAMEWORK_DEFAULT
#define ANE_FRAMEWORK_DEFAULT \
    "/System/Library/PrivateFrameworks/AppleNeuralEngine.framework/AppleNeuralEngine"
#endif
#define ANE_SUPPORT_IMAGES                                         \
    "/System/Library/Frameworks/Foundation.framework/Foundation", \
        "/System/Library/Frameworks/IOSurface.framework/IOSurface"
#define ANE_PLATFORM "macos"
#else
#define ANE_FRAMEWORK_DEFAULT NULL /* none: only $ANE_FRAMEWORK_PATH loads anything */
#define ANE_SUPPORT_IMAGES NULL    /* everything is in the stand-in */
#define ANE_PLATFORM "not-macos"
#endif

/* Why the backend is unavailable when no framework path is set (off macOS). */
#define ANE_NO_FRAMEWORK_WHY "not macOS (Apple's private framework exists only there)"

#endif
