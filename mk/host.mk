# mk/host.mk - test support for the host: the pseudo-terminal driver the REPL specs type through.
PTYDRIVE := $(BUILD)/support/ptydrive
$(PTYDRIVE): spec/support/ptydrive.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<
EXTRA_TEST_DEPS += $(PTYDRIVE)
