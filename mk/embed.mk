# mk/embed.mk - the embedding example (examples/embed), built against the in-tree library for
# `make test`; examples/embed/Makefile builds the same program against an installed ane.
EMBED_HOST := $(BUILD)/examples/embed/host
$(EMBED_HOST): examples/embed/host.c $(BUILD)/libane.a runtime/include/ane.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libane.a $(LIB_EXTRA_LIBS) $(LUA_LIBS) $(LDLIBS)
EXTRA_TEST_DEPS += $(EMBED_HOST)
