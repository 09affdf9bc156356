# mk/queue.mk - async compile queue: ThreadSanitizer runs and the queue benchmarks.
#
#   make test-queue-tsan   build with -fsanitize=thread (build-tsan/) and run only the queue
#                          C test and the queue/chain/double-buffer specs, under the ane host and
#                          under stock lua5.4 (libtsan preloaded, as stock lua is not instrumented)
#   make test SANITIZE=thread runs the whole suite the same way.

ifeq ($(SANITIZE),thread)
  # Stock lua5.4 must have the TSan runtime loaded first to host an instrumented core.so.
  LUA_RUN := env LD_PRELOAD=$(shell $(CC) -print-file-name=libtsan.so) TSAN_OPTIONS=halt_on_error=1
endif

QUEUE_SPECS := $(wildcard spec/queue_spec.lua spec/chain_spec.lua spec/double_buffer_spec.lua)
TSAN_LUA_ENV := ANE_ROOT=$(CURDIR) ANE_BUILD=$(CURDIR)/build-tsan \
  LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;' \
  LUA_CPATH='$(CURDIR)/build-tsan/lua/?.so;;' TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# This fragment is included before `all` is defined: keep `all` the default goal.
.DEFAULT_GOAL := all

.PHONY: test-queue-tsan
test-queue-tsan:
	$(MAKE) SANITIZE=thread all build-tsan/test/test_queue
	TSAN_OPTIONS=halt_on_error=1 build-tsan/test/test_queue && echo "ok   test_queue (tsan)"
ifneq ($(QUEUE_SPECS),)
	$(TSAN_LUA_ENV) busted --lua=$(CURDIR)/build-tsan/ane -o utfTerminal $(QUEUE_SPECS)
	$(TSAN_LUA_ENV) LD_PRELOAD=$(shell $(CC) -print-file-name=libtsan.so) \
	  busted --lua=$(LUA) -o utfTerminal $(QUEUE_SPECS)
endif
