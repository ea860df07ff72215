/*
 * hello: an example fanout destination plugin.
 *
 * For each message it appends one line to the file named by the target's
 * destination:
 *
 *     [prefix]key<TAB>body-length<TAB>first-sequence-number
 *
 * The key's control bytes, DEL and backslash are written as \xHH so a line
 * stays a line; a message that carries no record shows "-" as its sequence
 * number. A mapping that uses it:
 *
 *     {"sourceArn": "arn:aws:kinesis:...", "id": "demo", "type": "hello",
 *      "destination": "/tmp/fanout-hello.tsv", "active": true,
 *      "prefix": "demo "}
 *
 * It needs only <fanout/plugin.h>: build it with the Makefile beside this
 * file and put hello.so on FANOUT_PLUGIN_PATH.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fanout/plugin.h>

/* A file has no service quotas; these only keep one write() bounded. A
 * plugin for a service names its documented limits here, with their source. */
#define HELLO_MAX_MESSAGES_PER_CALL 500
#define HELLO_MAX_MESSAGE_BYTES     (1024 * 1024)
#define HELLO_MAX_CALL_BYTES        (8 * 1024 * 1024)

/* The mapping fields this plugin adds (see s_options). */
struct hello_options {
    const char *prefix; /* NULL when unset */
};

/* Shared by every instance: the host table, kept from init; open copies it
 * into the instance (plugin.h, "Host and state"). */
struct hello_state {
    const struct fanout_host *host;
};

struct hello_instance {
    const struct fanout_host *host;
    char *scope; /* "hello:<target id>", the log lines' prefix */
    const char *path;
    const char *prefix; /* the target's, which outlives the instance */
    int fd;
};

static const struct fanout_option s_options[] = {
    {.name = "prefix",
     .type = FANOUT_OPT_STRING,
     .offset = offsetof(struct hello_options, prefix),
     .description = "text written at the start of every line (no tab or newline)"},
    {.name = NULL},
};

static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    struct hello_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err->code, sizeof err->code, "OutOfMemory");
        snprintf(err->message, sizeof err->message, "hello: out of memory");
        return -1;
    }
    s->host = host;
    *state = s;
    return 0;
}

static void s_fini(void *state)
{
    free(state);
}

static int s_validate(const struct fanout_target *target, char *err, size_t err_len)
{
    const char *dest = target->destination;
    if (!dest || dest[0] != '/') {
        snprintf(err, err_len,
                 "destination \"%s\" must be an absolute file path, e.g. "
                 "/tmp/fanout-hello.tsv",
                 dest ? dest : "");
        return -1;
    }
    if (dest[strlen(dest) - 1] == '/') {
        snprintf(err, err_len,
                 "destination \"%s\" names a directory: give a file, e.g. "
                 "/tmp/fanout-hello.tsv",
                 dest);
        return -1;
    }
    const struct hello_options *o = target->options;
    if (o && o->prefix && strpbrk(o->prefix, "\t\r\n")) {
        snprintf(err, err_len, "prefix must not contain a tab or a line break");
        return -1;
    }
    return 0;
}

static int s_open(void *state, const struct fanout_target *target, void **instance,
                  struct fanout_error *err)
{
    const struct hello_state *s = state;
    const struct hello_options *o = target->options;
    struct hello_instance *in = calloc(1, sizeof *in);
    size_t scope_len = strlen("hello:") + strlen(target->id ? target->id : "") + 1;
    if (!in || !(in->scope = malloc(scope_len))) {
        free(in);
        snprintf(err->code, sizeof err->code, "OutOfMemory");
        snprintf(err->message, sizeof err->message, "hello: out of memory");
        return -1;
    }
    snprintf(in->scope, scope_len, "hello:%s", target->id ? target->id : "");
    in->host = s->host;
    in->path = target->destination;
    in->prefix = o && o->prefix ? o->prefix : "";
    in->fd = open(in->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (in->fd < 0) {
        int e = errno;
        snprintf(err->code, sizeof err->code, "OpenFailed");
        snprintf(err->message, sizeof err->message, "cannot open %s: %s", in->path,
                 strerror(e));
        free(in->scope);
        free(in);
        return -1;
    }
    in->host->log(FANOUT_LOG_INFO, in->scope, "appending to %s", in->path);
    *instance = in;
    return 0;
}

/* Worst case of one line: every key byte escaped to 4, two numbers. */
static size_t s_line_max(const struct hello_instance *in, const struct fanout_message *m,
                         const char *seq)
{
    return strlen(in->prefix) + 4 * m->key_len + 1 + 20 + 1 + strlen(seq) + 2;
}

static size_t s_format_line(char *out, const struct hello_instance *in,
                            const struct fanout_message *m, const char *seq)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(in->prefix);
    memcpy(out, in->prefix, n);
    for (size_t i = 0; i < m->key_len; i++) {
        unsigned char c = m->key[i];
        if (c < 0x20 || c == 0x7f || c == '\\') {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else {
            out[n++] = (char)c;
        }
    }
    n += (size_t)sprintf(out + n, "\t%zu\t%s\n", m->body_len, seq);
    return n;
}

static const char *s_first_seq(const struct fanout_message *m)
{
    if (m->record_count && m->records[0] && m->records[0]->sequence_number)
        return m->records[0]->sequence_number;
    return "-";
}

/* A full disk or an I/O error may pass; anything else will not. */
static int s_status_for(int e)
{
    return (e == ENOSPC || e == EDQUOT || e == EIO || e == EAGAIN) ? FANOUT_RETRY
                                                                   : FANOUT_FATAL;
}

/* All lines of a batch go out in one buffer. A message counts as delivered
 * once its whole line is written; after a failed write the file may end with
 * a partial line, and the messages not written are reported for retry. */
static int s_send(void *instance, const struct fanout_batch *batch,
                  struct fanout_outcome *outcomes)
{
    struct hello_instance *in = instance;
    size_t cap = 0;
    for (size_t i = 0; i < batch->count; i++)
        cap += s_line_max(in, batch->messages[i], s_first_seq(batch->messages[i]));
    char *buf = malloc(cap ? cap : 1);
    size_t *ends = malloc((batch->count ? batch->count : 1) * sizeof *ends);
    if (!buf || !ends) {
        for (size_t i = 0; i < batch->count; i++)
            fanout_outcome_set(&outcomes[i], FANOUT_RETRY, "OutOfMemory",
                               "hello: out of memory");
        free(buf);
        free(ends);
        return -1;
    }
    size_t len = 0;
    for (size_t i = 0; i < batch->count; i++) {
        const struct fanout_message *m = batch->messages[i];
        len += s_format_line(buf + len, in, m, s_first_seq(m));
        ends[i] = len;
    }

    size_t done = 0;
    int e = 0;
    while (done < len) {
        ssize_t w = write(in->fd, buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            break;
        }
        done += (size_t)w;
    }
    if (done < len) {
        size_t ok = 0;
        while (ok < batch->count && ends[ok] <= done)
            ok++;
        in->host->log(FANOUT_LOG_WARN, in->scope,
                      "write to %s failed after %zu of %zu messages: %s", in->path, ok,
                      batch->count, strerror(e));
        for (size_t i = ok; i < batch->count; i++)
            fanout_outcome_set(&outcomes[i], s_status_for(e), "WriteFailed",
                               "write to %s failed: %s", in->path, strerror(e));
    } else if (in->host->log_enabled(FANOUT_LOG_DEBUG)) {
        in->host->log(FANOUT_LOG_DEBUG, in->scope, "appended %zu lines to %s", batch->count,
                      in->path);
    }
    free(buf);
    free(ends);
    return 0;
}

static void s_close(void *instance)
{
    struct hello_instance *in = instance;
    if (close(in->fd) != 0)
        in->host->log(FANOUT_LOG_WARN, in->scope, "closing %s: %s", in->path,
                      strerror(errno));
    free(in->scope);
    free(in);
}

FANOUT_PLUGIN_DEFINE(
        /* One instance appends in batch order: keep its sends one at a time. */
        .flags = FANOUT_PLUGIN_SERIAL, .name = "hello", .version = "1.0.0",
        .description = "Appends key, body length and first sequence number per message "
                       "to a file (SDK example)",
        .destination_example = "/tmp/fanout-hello.tsv",
        .limits =
            {
                .max_messages_per_call = HELLO_MAX_MESSAGES_PER_CALL,
                .max_message_bytes = HELLO_MAX_MESSAGE_BYTES,
                .max_call_bytes = HELLO_MAX_CALL_BYTES,
            },
        .collapse_modes = FANOUT_COLLAPSE_ALL, .default_collapse = FANOUT_COLLAPSE_NONE,
        .options = s_options, .options_size = sizeof(struct hello_options), .init = s_init,
        .fini = s_fini, .validate = s_validate, .open = s_open, .send = s_send,
        .close = s_close);
