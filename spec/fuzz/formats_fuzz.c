/* formats_fuzz.c - libFuzzer target over the model-file readers: the same bytes as a llama2.c
 * checkpoint header (llama2c_parse) and as a tokenizer.bin (tok_load_bin_mem), which, when it
 * loads, then encodes the input's tail as text under run.c's rules and decodes every id back.
 * Any crash or sanitizer report is a finding; errors are the expected answer. */
#include <stdint.h>
#include <string.h>

#include "formats/llama2c.h"
#include "formats/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ane_error e;
    llama2c_layout lay;
    llama2c_parse(data, size, "fuzz.bin", &lay, &e);
    tokenizer *t = tok_load_bin_mem(data, size, "fuzz.bin", -1, &e);
    if (t) {
        size_t n = size > 64 ? 64 : size;
        const int32_t *ids;
        size_t nids;
        if (tok_encode(t, (const char *)data + size - n, n, 1, 1, &ids, &nids, &e) == 0) {
            int prev = -1;
            for (size_t i = 0; i < nids; i++) {
                size_t len;
                const char *s = tok_decode(t, prev, ids[i], &len);
                if (!s) __builtin_trap(); /* encode produced an id out of range */
                prev = ids[i];
            }
        }
        tok_free(t);
    }
    return 0;
}
