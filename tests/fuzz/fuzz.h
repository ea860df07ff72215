/* Shared by the libFuzzer targets: the entry point's prototype, log lines
 * sent to /dev/null (the code that formats them still runs), and checks of
 * the properties every output must have. A failed check aborts, which
 * libFuzzer reports as a crash with the input that caused it. */
#ifndef FANOUT_FUZZ_H
#define FANOUT_FUZZ_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Once per process: logs to /dev/null at debug level, so that every log
 * call formats its line. */
static inline void fuzz_quiet_logs(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0)
        fanout_log_set_fd(fd);
    fanout_log_set(FANOUT_LOG_DEBUG, 0);
}

#define FUZZ_CHECK(cond, ...)                                                              \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__, __LINE__,        \
                    #cond);                                                                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* A NUL-terminated copy of the input (the parsers take C strings or must
 * not read past `size`: ASan catches a read past this exact-size copy). */
static inline char *fuzz_dup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    for (size_t i = 0; i < size; i++)
        s[i] = (char)data[i];
    s[size] = 0;
    return s;
}

#endif
