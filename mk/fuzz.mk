# mk/fuzz.mk - the libFuzzer target over the MIL parser, printer round trip, checker and blob
# reader (spec/fuzz/mil_fuzz.c). clang only; built into $(BUILD)/fuzz/mil_fuzz.
#
#   make fuzz                 run it for FUZZ_SECONDS (default 60) on the seed corpus
#   make test                 builds it too; scripts/run-tests.sh runs it for 5 s
# Seeds: spec/fixtures/fuzz (committed, small) + spec/fixtures/mil; new finds: $(BUILD)/fuzz/corpus.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BIN := $(BUILD)/fuzz/mil_fuzz
# The MIL front end and checker need only the error record and the big-buffer allocator (their
# arena's weight chunks) from the core, and stay that way: the fuzzer links nothing else, which
# keeps it fast and its coverage on MIL.
FUZZ_SRC := spec/fuzz/mil_fuzz.c $(wildcard runtime/mil/*.c) runtime/core/error.c runtime/core/bigmem.c
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -Iruntime -Iruntime/include $(BLAS_CFLAGS)

# This fragment is included before `all` is defined: keep `all` the default goal.
.DEFAULT_GOAL := all

ifneq ($(shell command -v $(FUZZ_CC) 2>/dev/null),)
  EXTRA_TEST_DEPS += $(FUZZ_BIN) $(BUILD)/fuzz/corpus
endif

$(FUZZ_BIN): $(FUZZ_SRC) $(wildcard runtime/mil/*.h runtime/core/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(FUZZ_SRC) $(BLAS_LIBS) -lm -lpthread

$(BUILD)/fuzz/corpus:
	@mkdir -p $@

fuzz: $(FUZZ_BIN) $(BUILD)/fuzz/corpus
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 $(BUILD)/fuzz/corpus spec/fixtures/fuzz spec/fixtures/mil

# The model-file readers (spec/fuzz/formats_fuzz.c): llama2.c headers and tokenizer.bin.
FORMATS_FUZZ_BIN := $(BUILD)/fuzz/formats_fuzz
FORMATS_FUZZ_SRC := spec/fuzz/formats_fuzz.c runtime/formats/llama2c.c runtime/formats/tokenizer.c \
  runtime/formats/mapfile.c runtime/core/atomic_file.c runtime/core/error.c runtime/core/fp16.c \
  runtime/core/tensor.c runtime/core/storage.c runtime/core/dtype.c
ifneq ($(shell command -v $(FUZZ_CC) 2>/dev/null),)
  EXTRA_TEST_DEPS += $(FORMATS_FUZZ_BIN)
endif
$(FORMATS_FUZZ_BIN): $(FORMATS_FUZZ_SRC) $(wildcard runtime/formats/*.h runtime/core/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FORMATS_CFLAGS) -o $@ $(FORMATS_FUZZ_SRC) $(FORMATS_LIBS) -lm -lpthread
