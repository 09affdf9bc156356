# ane - Makefile. One readable file; fragments for optional parts live in mk/*.mk.
#
#   make                 build/ane (host), build/libane.a, build/lua/ane/core.so (for stock lua5.4)
#   make test            C unit tests + busted specs under lua5.4 and under build/ane + a short fuzz run
#   make test SANITIZE=1 the same with AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench           benchmarks (see BENCHMARKS.md)
#   make fuzz            the MIL parser+checker fuzzer, longer (FUZZ_SECONDS=60)
#   make install PREFIX=/usr/local   (make uninstall PREFIX=... removes it again)
#   make demo            install what is missing, build, train the flagship (examples/train_tiny.lua)

# ---- change settings here ----
CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
SANITIZE ?=
OPT     ?= -O2
# --------------------------------

UNAME := $(shell uname -s)
PKG   := pkg-config

LUA_PC := $(firstword $(foreach p,lua5.4 lua-5.4 lua54 lua,$(if $(shell $(PKG) --exists $(p) && echo y),$(p))))
LUA_CFLAGS := $(shell $(PKG) --cflags $(LUA_PC))
LUA_LIBS   := $(shell $(PKG) --libs $(LUA_PC))
LUA        ?= $(shell command -v lua5.4 || command -v lua)
EDIT_CFLAGS := $(shell $(PKG) --cflags libedit 2>/dev/null)
EDIT_LIBS   := $(shell $(PKG) --libs libedit 2>/dev/null || echo -ledit)

ifeq ($(UNAME),Darwin)
  BLAS_CFLAGS := -DANE_ACCELERATE
  BLAS_LIBS   := -framework Accelerate
  SO_LDFLAGS  := -bundle -undefined dynamic_lookup
else
  BLAS_CFLAGS := $(shell $(PKG) --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
  BLAS_LIBS   := $(shell $(PKG) --libs openblas 2>/dev/null || echo -lopenblas)
  SO_LDFLAGS  := -shared
endif

# Messages are bounded buffers by design, so truncation warnings are off where the compiler has
# them (GCC, clang 18+); clang before 18 rejects the flag under -Werror, so it is probed, not assumed.
warn_for = -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter \
  $(shell $(1) -Werror -Wno-format-truncation -x c -fsyntax-only /dev/null 2>/dev/null && echo -Wno-format-truncation)
WARN   := $(call warn_for,$(CC))
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -fPIC $(OPT) -g $(WARN) $(LUA_CFLAGS) $(BLAS_CFLAGS) -Iruntime/include
LDLIBS := $(BLAS_LIBS) -lm -lpthread -ldl

ifeq ($(SANITIZE),1)
  SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  BUILD := build-san
else ifeq ($(SANITIZE),thread)
  SAN := -fsanitize=thread -fno-omit-frame-pointer
  BUILD := build-tsan
endif
CFLAGS := $(CFLAGS_BASE) $(SAN) $(EXTRA_CFLAGS)
LDFLAGS += $(SAN)

# Sources: one folder per concern; every .c in these folders is part of the library.
LIB_DIRS := runtime/core runtime/mil runtime/nn runtime/formats runtime/backend runtime/backend/cpu runtime/queue runtime/lua
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)) runtime/host/embed.c
HOST_SRC := runtime/host/main.c $(filter-out runtime/host/embed.c,$(wildcard runtime/host/*.c))
HOST_SRC := $(sort $(HOST_SRC))
LIB_EXTRA_LIBS :=

.DEFAULT_GOAL := all   # fragments below may define rules; `make` alone still means `all`
-include mk/*.mk

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
HOST_OBJ := $(HOST_SRC:%.c=$(BUILD)/obj/%.o)
DEPS     := $(LIB_OBJ:.o=.d) $(HOST_OBJ:.o=.d)

.PHONY: all test test-c test-lua test-fuzz bench fuzz install uninstall demo clean check-headers
all: $(BUILD)/ane $(BUILD)/libane.a $(BUILD)/lua/ane/core.so $(EXTRA_TARGETS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libane.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ane: $(HOST_OBJ) $(BUILD)/libane.a
	$(CC) $(LDFLAGS) -o $@ $(HOST_OBJ) $(BUILD)/libane.a $(LIB_EXTRA_LIBS) $(LUA_LIBS) $(EDIT_LIBS) $(LDLIBS)

# The module stock lua5.4 loads: `require "ane"` -> lua/ane/init.lua -> require "ane.core".
$(BUILD)/lua/ane/core.so: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SO_LDFLAGS) -o $@ $(LIB_OBJ) $(LIB_EXTRA_LIBS) $(LDLIBS)

# ---- tests ----
C_TESTS := $(patsubst spec/c/%.c,$(BUILD)/test/%,$(wildcard spec/c/test_*.c))
$(BUILD)/test/%: spec/c/%.c spec/c/expect.h $(BUILD)/libane.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iruntime -o $@ $< $(BUILD)/libane.a $(LIB_EXTRA_LIBS) $(LUA_LIBS) $(LDLIBS)

ifeq ($(SANITIZE),1)
  # Stock lua5.4 is not instrumented: preload the sanitizer runtime so the module can load.
  LUA_RUN := env LD_PRELOAD=$(shell $(CC) -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0
endif
ANE_ENV := ANE_ROOT=$(CURDIR) ANE_BUILD=$(CURDIR)/$(BUILD) LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;' LUA_CPATH='$(CURDIR)/$(BUILD)/lua/?.so;;'

test: all $(C_TESTS) $(EXTRA_TEST_DEPS)
	@scripts/run-tests.sh "$(BUILD)" "$(LUA)" "$(LUA_RUN)" "$(SANITIZE)"

bench: all
	@for s in scripts/bench*.lua; do echo "== $$s"; $(ANE_ENV) $(BUILD)/ane $$s || exit 1; done

# The first command of the README: dependencies, build, the flagship example.
demo:
	bash scripts/install-deps.sh
	$(MAKE) --no-print-directory all
	$(ANE_ENV) $(BUILD)/ane examples/train_tiny.lua --out $(BUILD)/train_tiny

# Layout: bin/ane, lib/libane.a, include/ane.h, share/lua/5.4/ane/** (the Lua half),
# lib/lua/5.4/ane/core.so (for stock lua5.4), lib/pkgconfig/ane.pc. The installed `ane` finds
# share/lua/5.4 relative to its own path, so any PREFIX works without LUA_PATH.
LUA_SHARE := $(DESTDIR)$(PREFIX)/share/lua/5.4
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(LUA_SHARE)/ane $(DESTDIR)$(PREFIX)/lib/lua/5.4/ane $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/ane $(DESTDIR)$(PREFIX)/bin/ane
	install -m 644 $(BUILD)/libane.a $(DESTDIR)$(PREFIX)/lib/libane.a
	install -m 644 runtime/include/ane.h $(DESTDIR)$(PREFIX)/include/ane.h
	cd lua && for f in $$(find ane -name '*.lua' | sort); do \
	  install -d "$(LUA_SHARE)/$$(dirname $$f)" && install -m 644 "$$f" "$(LUA_SHARE)/$$f" || exit 1; done
	install -m 755 $(BUILD)/lua/ane/core.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/ane/core.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LUA_PC@|$(LUA_PC)|' \
	  -e 's|@LIBS@|$(SAN) $(LIB_EXTRA_LIBS) $(LUA_LIBS) $(LDLIBS)|' \
	  runtime/include/ane.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ane.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ane $(DESTDIR)$(PREFIX)/lib/libane.a \
	  $(DESTDIR)$(PREFIX)/include/ane.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/ane.pc
	rm -rf $(LUA_SHARE)/ane $(DESTDIR)$(PREFIX)/lib/lua/5.4/ane

# Every header compiles on its own.
check-headers:
	@for h in $(shell find runtime -name '*.h'); do \
	  echo '#include "'$$PWD/$$h'"' | $(CC) $(CFLAGS) -x c -fsyntax-only - || exit 1; done; echo "headers ok"

clean:
	rm -rf build build-san build-tsan

-include $(DEPS)
