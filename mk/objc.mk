# objc.mk - ane.objc, the Objective-C runtime from Lua (runtime/objc, docs/objc.md), and its
# test library.
#
# Nothing links libobjc: runtime/objc dlopens the runtime at first use (Apple's on macOS, GCC's
# libobjc elsewhere, whose path is baked in here; $ANE_OBJC_RUNTIME overrides), so libane works
# where there is none and ane.objc.available() says why. Messages need libffi, found with
# pkg-config; without it the bridge still introspects and reports sends as unavailable.

OBJC_DIR := runtime/objc
LIB_SRC += $(wildcard $(OBJC_DIR)/*.c)

FFI_CFLAGS := $(shell $(PKG) --cflags libffi 2>/dev/null)
FFI_LIBS   := $(shell $(PKG) --libs libffi 2>/dev/null)
ifeq ($(UNAME),Darwin)
  ifeq ($(FFI_LIBS),)
    # the SDK's libffi (headers under usr/include/ffi)
    FFI_CFLAGS := -I$(shell xcrun --show-sdk-path 2>/dev/null)/usr/include/ffi
    FFI_LIBS   := -lffi
  endif
endif
ifneq ($(FFI_LIBS),)
$(BUILD)/obj/$(OBJC_DIR)/ffi_send.o: CFLAGS += -DOBJC_HAVE_FFI $(FFI_CFLAGS)
LIB_EXTRA_LIBS += $(FFI_LIBS)
endif

ifneq ($(UNAME),Darwin)
OBJC_RUNTIME := $(realpath $(shell gcc -print-file-name=libobjc.so 2>/dev/null))
ifneq ($(OBJC_RUNTIME),)
$(BUILD)/obj/$(OBJC_DIR)/objc.o: CFLAGS += -DOBJC_RUNTIME_DEFAULT='"$(OBJC_RUNTIME)"'
endif

# The test library (spec/support/objctest): classes for spec/objc_spec.lua on GCC's runtime,
# subclasses of the stand-in's root class (it links the stand-in, mk/ane.mk).
OBJCTEST_DIR := spec/support/objctest
OBJCTEST_SO  := $(BUILD)/objctest/libOTClasses.so
$(BUILD)/obj/$(OBJCTEST_DIR)/ot_classes.o: CFLAGS += -idirafter $(shell gcc -print-file-name=include)
$(BUILD)/obj/$(OBJCTEST_DIR)/ot_protocol.o: $(OBJCTEST_DIR)/ot_protocol.m
	@mkdir -p $(dir $@)
	gcc -x objective-c -fobjc-exceptions -fPIC -O1 -g -Wall -Werror $(SAN) -c $< -o $@
# ot_protocol.o first: its module registers the protocol before ot_classes.c's constructor runs
$(OBJCTEST_SO): $(BUILD)/obj/$(OBJCTEST_DIR)/ot_protocol.o $(BUILD)/obj/$(OBJCTEST_DIR)/ot_classes.o $(STANDIN_SO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -o $@ $(filter %.o,$^) $(CURDIR)/$(STANDIN_SO) \
	  $(shell gcc -print-file-name=libobjc.so)
EXTRA_TARGETS += $(OBJCTEST_SO)
endif

# `make check-darwin` (mk/ane.mk) also compiles the bridge as the macOS build.
.PHONY: check-darwin-objc
check-darwin-objc:
	@for f in $(wildcard $(OBJC_DIR)/*.c) runtime/lua/l_objc.c; do \
	  $(CC) -std=c11 -D_GNU_SOURCE $(WARN) -fsyntax-only -D__APPLE__ -D__arm64__ -DOBJC_HAVE_FFI \
	    $(FFI_CFLAGS) $(LUA_CFLAGS) -Iruntime/include $$f || exit 1; \
	done; echo "check-darwin-objc ok"
check-darwin: check-darwin-objc
