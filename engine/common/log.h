/* Logging: one line per entry on stderr, JSON (Lambda's JSON log format:
 * timestamp, level, requestId, scope, message) or text.
 * Level: AWS_LAMBDA_LOG_LEVEL (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) when
 * set, else FANOUT_LOG_LEVEL (error, warn, info, debug); INFO by default.
 * Format: FANOUT_LOG_FORMAT (json, text) when set; else text on a terminal;
 * else JSON when AWS_LAMBDA_LOG_FORMAT=JSON, text otherwise (Lambda's
 * default, Text). Thread-safe: each line is written with one write(2). */
#ifndef FANOUT_LOG_H
#define FANOUT_LOG_H

#include <fanout/plugin.h>

#include "common/util.h"

void fanout_log_init(void);
/* Override level/format (tests); format: 0 text, 1 json. */
void fanout_log_set(enum fanout_log_level level, int json);
/* Override the level only (--verbose, --quiet). */
void fanout_log_set_level(enum fanout_log_level level);
/* A level's name (either spelling, any case) as a level; Lambda's TRACE is
 * DEBUG, FATAL is -1 (no line of fanout's passes); -2 when unknown. */
int fanout_log_parse_level(const char *name);
/* The format rule above: 1 for JSON. */
int fanout_log_json_wanted(const char *fanout_format, const char *lambda_format,
                           int is_terminal);
/* The request id JSON lines carry ("requestId") until the next call; NULL
 * between invocations. Call it only while no other thread logs (the
 * runtime loop, between invocations). Longer ids are cut. */
#define FANOUT_LOG_REQUEST_ID_MAX 128
void fanout_log_set_request_id(const char *id);
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
