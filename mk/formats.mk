# mk/formats.mk - libraries of the tokenizer readers (runtime/formats/tokenizer.c): Oniguruma for
# tokenizer.json's Split regexes (the engine the Rust `tokenizers` crate uses) and utf8proc for
# NFC. Both come from the distribution (scripts/install-deps.sh) and are found with pkg-config.
FORMATS_CFLAGS := $(shell $(PKG) --cflags oniguruma libutf8proc 2>/dev/null)
FORMATS_LIBS   := $(shell $(PKG) --libs oniguruma libutf8proc 2>/dev/null || echo -lonig -lutf8proc)
CFLAGS += $(FORMATS_CFLAGS)
LIB_EXTRA_LIBS += $(FORMATS_LIBS)
