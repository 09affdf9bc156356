/* expect.h - the check macro of the C tests: EXPECT(cond, fmt, ...) counts a check and, when cond
 * is false, a failure, printing file:line and the message. A test ends with
 * `printf("name: %d checks, %d failures\n", checks, failures); return failures ? 1 : 0;`. */
#ifndef ANE_SPEC_EXPECT_H
#define ANE_SPEC_EXPECT_H

#include <stdio.h>

static int failures, checks;
#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#endif
