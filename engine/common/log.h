/* Logging: one line per entry on stderr, JSON (Lambda, CloudWatch) or text
 * (a terminal), level from FANOUT_LOG_LEVEL (error, warn, info, debug) and
 * format from FANOUT_LOG_FORMAT (json, text; default json under Lambda and
 * text elsewhere). Thread-safe: each line is written with one write(2). */
#ifndef FANOUT_LOG_H
#define FANOUT_LOG_H

#include <fanout/plugin.h>

#include "common/util.h"

void fanout_log_init(void);
/* Override level/format (tests, --verbose); format: 0 text, 1 json. */
void fanout_log_set(enum fanout_log_level level, int json);
int fanout_log_enabled(enum fanout_log_level level);
void fanout_log(enum fanout_log_level level, const char *scope, const char *fmt, ...)
    FANOUT_FMT(3, 4);
void fanout_vlog(enum fanout_log_level level, const char *scope, const char *fmt,
                 va_list ap);
/* Send log lines to `fd` instead of stderr (tests); -1 restores stderr. */
void fanout_log_set_fd(int fd);

#define LOG_ERROR(scope, ...) fanout_log(FANOUT_LOG_ERROR, scope, __VA_ARGS__)
#define LOG_WARN(scope, ...)  fanout_log(FANOUT_LOG_WARN, scope, __VA_ARGS__)
#define LOG_INFO(scope, ...)  fanout_log(FANOUT_LOG_INFO, scope, __VA_ARGS__)
#define LOG_DEBUG(scope, ...)                                                              \
    do {                                                                                   \
        if (fanout_log_enabled(FANOUT_LOG_DEBUG))                                          \
            fanout_log(FANOUT_LOG_DEBUG, scope, __VA_ARGS__);                              \
    } while (0)

#endif
