#include "common/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The most verbose level written; S_FATAL_ONLY: none of ours (Lambda's
 * FATAL filter: fanout has no fatal lines, every ERROR is filtered). */
#define S_FATAL_ONLY (-1)
static int s_level = FANOUT_LOG_INFO;
static int s_json;
static int s_fd = 2;
/* The current invocation's request id (Lambda), NULL outside one: set by
 * the runtime loop between invocations, read by any thread during one. */
static char s_request_buf[FANOUT_LOG_REQUEST_ID_MAX + 1];
static const char *_Atomic s_request_id;

static const char *const s_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

int fanout_log_parse_level(const char *name)
{
    if (!name)
        return -2;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, s_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return FANOUT_LOG_WARN;
    if (strcasecmp(name, "trace") == 0) /* Lambda's; our most verbose */
        return FANOUT_LOG_DEBUG;
    if (strcasecmp(name, "fatal") == 0)
        return S_FATAL_ONLY;
    return -2;
}

int fanout_log_json_wanted(const char *fanout_format, const char *lambda_format,
                           int is_terminal)
{
    if (fanout_format && *fanout_format)
        return strcasecmp(fanout_format, "json") == 0;
    if (is_terminal)
        return 0;
    return lambda_format && strcasecmp(lambda_format, "json") == 0;
}

void fanout_log_init(void)
{
    /* Lambda's application log level first (set with the JSON format's
     * advanced logging controls), then fanout's own. */
    int lv = fanout_log_parse_level(getenv("AWS_LAMBDA_LOG_LEVEL"));
    if (lv == -2)
        lv = fanout_log_parse_level(getenv("FANOUT_LOG_LEVEL"));
    if (lv != -2)
        s_level = lv;
    s_json = fanout_log_json_wanted(getenv("FANOUT_LOG_FORMAT"),
                                    getenv("AWS_LAMBDA_LOG_FORMAT"), isatty(2));
}

void fanout_log_set(enum fanout_log_level level, int json)
{
    s_level = (int)level;
    s_json = json;
}

void fanout_log_set_level(enum fanout_log_level level)
{
    s_level = (int)level;
}

void fanout_log_set_fd(int fd)
{
    s_fd = fd < 0 ? 2 : fd;
}

void fanout_log_set_request_id(const char *id)
{
    if (!id) {
        atomic_store(&s_request_id, NULL);
        return;
    }
    atomic_store(&s_request_id, NULL);
    fanout_strlcpy(s_request_buf, id, sizeof s_request_buf);
    atomic_store(&s_request_id, s_request_buf);
}

int fanout_log_enabled(enum fanout_log_level level)
{
    return (int)level <= s_level;
}

/* Text format: one entry, one line, and no control character reaches the
 * terminal (a quoted id could hold escape sequences): a newline becomes a
 * space, other control characters \xNN. */
static void s_append_text(struct fanout_sbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f)
            continue;
        fanout_sbuf_put(b, s + start, i - start);
        if (c == '\n') {
            fanout_sbuf_putc(b, ' ');
        } else {
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            fanout_sbuf_put(b, esc, 4);
        }
        start = i + 1;
    }
    fanout_sbuf_put(b, s + start, n - start);
}

void fanout_vlog(enum fanout_log_level level, const char *scope, const char *fmt,
                 va_list ap)
{
    if (!fanout_log_enabled(level))
        return;
    if ((unsigned)level > FANOUT_LOG_DEBUG)
        level = FANOUT_LOG_DEBUG;
    char msg[2048];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        return;
    size_t mlen = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[64];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(tv.tv_usec / 1000));

    /* the scope is a mapping id or the like: user-controlled, capped */
    char qbuf[FANOUT_QUOTE_SIZE];
    if (scope && strnlen(scope, FANOUT_QUOTE_SIZE) >= FANOUT_QUOTE_SIZE)
        scope = fanout_quote(qbuf, scope); /* one the caller capped stays as is */
    struct fanout_sbuf b = {0};
    if (s_json) {
        fanout_sbuf_printf(&b, "{\"timestamp\":\"%s\",\"level\":\"%s\"", ts,
                           s_names[level]);
        const char *rid = atomic_load(&s_request_id);
        if (rid) {
            fanout_sbuf_puts(&b, ",\"requestId\":");
            fanout_sbuf_json_str(&b, (const uint8_t *)rid, strlen(rid));
        }
        if (scope) {
            fanout_sbuf_puts(&b, ",\"scope\":");
            fanout_sbuf_json_str(&b, (const uint8_t *)scope, strlen(scope));
        }
        fanout_sbuf_puts(&b, ",\"message\":");
        fanout_sbuf_json_str(&b, (const uint8_t *)msg, mlen);
        fanout_sbuf_puts(&b, "}\n");
    } else {
        fanout_sbuf_printf(&b, "%s %-5s ", ts, s_names[level]);
        if (scope) {
            fanout_sbuf_putc(&b, '[');
            s_append_text(&b, scope, strlen(scope));
            fanout_sbuf_puts(&b, "] ");
        }
        s_append_text(&b, msg, mlen);
        fanout_sbuf_putc(&b, '\n');
    }
    if (b.bytes) {
        ssize_t w = write(s_fd, b.bytes, b.len);
        (void)w;
    }
    fanout_sbuf_free(&b);
}

void fanout_log(enum fanout_log_level level, const char *scope, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fanout_vlog(level, scope, fmt, ap);
    va_end(ap);
}
