# clang.mk - `make check-clang`: every library and host source through clang's front end with the
# flags the Makefile gives clang (part of `make test` where clang is installed). A Mac build is
# clang's, and clang before 18 rejects flags and accepts code differently from GCC; the full
# `make test CC=clang` is the complete check, this keeps the cheap part of it in every run.

.DEFAULT_GOAL := all
.PHONY: check-clang
ifneq ($(shell command -v clang 2>/dev/null),)
check-clang:
	@for f in $(sort $(LIB_SRC) $(HOST_SRC)); do \
	  clang -std=c11 -D_GNU_SOURCE $(call warn_for,clang) $(LUA_CFLAGS) $(BLAS_CFLAGS) $(EDIT_CFLAGS) \
	    -Iruntime/include -Iruntime -DANE_WITH_ANE_BACKEND -fsyntax-only $$f || exit 1; \
	done; echo "check-clang ok"
EXTRA_TEST_DEPS += check-clang
endif
