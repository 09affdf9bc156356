/* ane_paths.h - the only platform switch of the ANE backend: which images to load.
 *
 * macOS: Apple's private framework (ane-private-api.md 1) plus Foundation and IOSurface, which
 * provide the classes, IOSurfaceCreate & co and the kIOSurface* keys.
 * Elsewhere: the stand-in library built by mk/ane.mk, which provides all of the above; its path is
 * baked in at build time (ANE_FRAMEWORK_DEFAULT) and $ANE_FRAMEWORK_PATH overrides it. */
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
#ifndef ANE_FRAMEWORK_DEFAULT
#define ANE_FRAMEWORK_DEFAULT "libANEStandin.so" /* mk/ane.mk passes the build path */
#endif
#define ANE_SUPPORT_IMAGES NULL /* everything is in the stand-in */
#define ANE_PLATFORM "standin"
#endif

#endif
