/*
 * expect.h — the native tests' check macro: EXPECT(cond, printf-style message) counts the
 * check (`checks`) and, when it fails, the failure, printing where it happened; the test goes
 * on. main() returns failures != 0.
 */
#ifndef SL_TESTS_EXPECT_H
#define SL_TESTS_EXPECT_H

#include <stdio.h>

static int failures = 0;
static int checks = 0;

#define EXPECT(cond, ...)                                                        \
  do {                                                                           \
    checks++;                                                                    \
    if (!(cond)) {                                                               \
      failures++;                                                                \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
      fprintf(stderr, __VA_ARGS__);                                              \
      fprintf(stderr, "\n");                                                     \
    }                                                                            \
  } while (0)

#endif /* SL_TESTS_EXPECT_H */
