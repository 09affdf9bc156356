# mk/queue.mk - async compile queue: ThreadSanitizer runs and the queue benchmarks.
#
#   make test-queue-tsan   build with -fsanitize=thread (build-tsan/) and run only the queue
#                          C tests (and test_cpu_plan and test_bigmem: the thread pool, the allocator) and the queue/chain/double-buffer specs, under the instrumented
#                          ane host (see the note below about stock lua5.4)
#   make test SANITIZE=thread runs the whole suite the same way.

ifeq ($(SANITIZE),thread)
  # An uninstrumented lua5.4 cannot dlopen a TSan core.so ("cannot allocate memory in static TLS
  # block") unless libtsan is preloaded, and a preloaded libtsan crashes /bin/sh (dash), which
  # every popen-based spec starts. So under TSan both busted passes run on the instrumented host.
  LUA := $(CURDIR)/build-tsan/ane
  export TSAN_OPTIONS ?= halt_on_error=1
endif

QUEUE_C_TESTS := test_queue test_compile_job test_chain test_cpu_plan test_bigmem
QUEUE_SPECS := $(wildcard spec/queue_spec.lua spec/chain_spec.lua spec/double_buffer_spec.lua spec/robust_spec.lua)
TSAN_LUA_ENV := ANE_ROOT=$(CURDIR) ANE_BUILD=$(CURDIR)/build-tsan \
  LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;' \
  LUA_CPATH='$(CURDIR)/build-tsan/lua/?.so;;' TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# This fragment is included before `all` is defined: keep `all` the default goal.
.DEFAULT_GOAL := all

.PHONY: test-queue-tsan
test-queue-tsan:
	$(MAKE) SANITIZE=thread all $(QUEUE_C_TESTS:%=build-tsan/test/%)
	@for t in $(QUEUE_C_TESTS); do TSAN_OPTIONS=halt_on_error=1 build-tsan/test/$$t || exit 1; \
	  echo "ok   $$t (tsan)"; done
ifneq ($(QUEUE_SPECS),)
	$(TSAN_LUA_ENV) busted --lua=$(CURDIR)/build-tsan/ane -o utfTerminal $(QUEUE_SPECS)
endif

# The queue/chain benchmarks alone (scripts/bench_queue.lua, BENCHMARKS.md); `make bench` runs
# them once, through its scripts/bench*.lua glob.
.PHONY: bench-queue
bench-queue: all
	@$(ANE_ENV) $(BUILD)/ane scripts/bench_queue.lua
