# ane.mk - the ANE backend (runtime/backend/ane), its Linux stand-in, and `make check-darwin`.
#
# The backend is the same source on every system: it dlopens the framework at run time.
# On macOS that is Apple's private framework; elsewhere there is none by default (the backend
# says "not macOS"). The stand-in built here (spec/support/standin: test support, never
# installed) is loaded only when $ANE_FRAMEWORK_PATH names it, as scripts/run-tests.sh does.

ANE_DIR := runtime/backend/ane
ANE_SRC := $(wildcard $(ANE_DIR)/*.c)
LIB_SRC += $(ANE_SRC)

# backend_register_builtin() registers "ane" only when this fragment is in the build.
$(BUILD)/obj/runtime/backend/backend.o: CFLAGS += -DANE_WITH_ANE_BACKEND

ifneq ($(UNAME),Darwin)
STANDIN_DIR := spec/support/standin
STANDIN_SO  := $(BUILD)/standin/libANEStandin.so
STANDIN_LUA := $(BUILD)/lua/ane_standin.so
STANDIN_SRC := $(wildcard $(STANDIN_DIR)/sin_*.c)
STANDIN_OBJ := $(STANDIN_SRC:%.c=$(BUILD)/obj/%.o)
# GCC's Objective-C runtime: headers in gcc's own include dir, library by full path (both live in
# gcc's private dirs). Only objc/ is exposed (a directory holding a link to it): the rest of that
# dir is gcc's own stddef.h/stdatomic.h, which a clang build must not pick up.
OBJC_INC := $(BUILD)/objc-include
$(OBJC_INC)/objc:
	@mkdir -p $(dir $@)
	ln -sfn $(shell gcc -print-file-name=include)/objc $@
$(STANDIN_OBJ): | $(OBJC_INC)/objc
OBJC_LIB := $(shell gcc -print-file-name=libobjc.so)
# Test support only (l_standin.c, test_ane_backend.c): where the stand-in of this build is.
STANDIN_DEFINE := -DANE_STANDIN_PATH='"$(CURDIR)/$(STANDIN_SO)"'

$(BUILD)/obj/$(STANDIN_DIR)/%.o: CFLAGS += -Iruntime -I$(OBJC_INC)
# Header dependencies of the stand-in (the Makefile's DEPS list covers only the library).
.DEFAULT_GOAL := all
-include $(STANDIN_OBJ:.o=.d)

$(STANDIN_SO): $(STANDIN_OBJ) $(BUILD)/libane.a $(STANDIN_DIR)/standin.map
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -Wl,--version-script=$(STANDIN_DIR)/standin.map -o $@ \
	  $(STANDIN_OBJ) $(BUILD)/libane.a $(OBJC_LIB) $(LDLIBS)

$(STANDIN_LUA): $(STANDIN_DIR)/l_standin.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(STANDIN_DEFINE) $(LDFLAGS) $(SO_LDFLAGS) -o $@ $< -ldl

EXTRA_TARGETS += $(STANDIN_SO) $(STANDIN_LUA)
endif

# The macOS build of the backend, syntax-checked here with our own declarations of the Apple
# headers (darwin_decls.h): a typo in a macOS-only line fails on Linux too.
.PHONY: check-darwin
# A Mac build is clang's (Xcode's): check with clang where it is installed, with the flags the
# Makefile would give it there.
DARWIN_CC := $(if $(shell command -v clang 2>/dev/null),clang,$(CC))
check-darwin:
	@for f in $(ANE_SRC); do \
	  $(DARWIN_CC) -std=c11 -D_GNU_SOURCE $(call warn_for,$(DARWIN_CC)) -fsyntax-only -D__APPLE__ -D__arm64__ -DANE_CHECK_DARWIN \
	    -DANE_WITH_ANE_BACKEND -Iruntime/include $$f || exit 1; \
	done; echo "check-darwin ok ($(words $(ANE_SRC)) files)"

EXTRA_TEST_DEPS += check-darwin

# The C test loads the stand-in: export the executable's LSan hook (ane_backend.c) to libasan.
$(BUILD)/test/test_ane_backend: CFLAGS += -rdynamic $(STANDIN_DEFINE)
