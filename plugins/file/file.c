/*
 * The `file` destination: each message as one JSON line, appended to a file
 * or written to stdout (destination "-"). It is the default for local runs
 * and what the tests read back.
 *
 * One line per message:
 *   {"source":..., "key":..., "sequenceNumber":..., "subSequenceNumber":...,
 *    "action":..., "data":"<text>"}            (collapse none)
 * with "dataBase64" instead of "data" when the bytes are not valid UTF-8.
 * For collapsed messages, key and sequence numbers are the first record's,
 * "records" counts the records carried and "data" is the message body.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fanout/plugin.h>

struct file_options {
    int fsync;
};

struct file_instance {
    int fd;
    int owned; /* not stdout */
    int fsync;
    char *path;
    pthread_mutex_t lock; /* keeps each call's lines together, in order */
};

static const struct fanout_host *s_host;

/* ---- a tiny growable buffer (a plugin only has the SDK headers) ---- */

struct s_buf {
    char *p;
    size_t len, cap;
};

static int s_put(struct s_buf *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static int s_puts(struct s_buf *b, const char *s)
{
    return s_put(b, s, strlen(s));
}

static size_t s_utf8_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t k = c < 0x80                 ? 1
               : c >= 0xC2 && c <= 0xDF ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    if (!k || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0) ||
        (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
        return 0;
    return k;
}

static int s_is_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = s_utf8_len(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* A JSON string of valid UTF-8 text. */
static int s_json_str(struct s_buf *b, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = s_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc |= s_put(b, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        switch (c) {
        case '"': rc |= s_puts(b, "\\\""); break;
        case '\\': rc |= s_puts(b, "\\\\"); break;
        case '\n': rc |= s_puts(b, "\\n"); break;
        case '\r': rc |= s_puts(b, "\\r"); break;
        case '\t': rc |= s_puts(b, "\\t"); break;
        default: rc |= s_put(b, esc, 6);
        }
    }
    rc |= s_put(b, s + run, n - run);
    rc |= s_put(b, "\"", 1);
    return rc;
}

static int s_b64(struct s_buf *b, const uint8_t *p, size_t n)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int rc = s_put(b, "\"", 1);
    for (size_t i = 0; i < n && rc == 0; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {t[v >> 18], t[(v >> 12) & 63], i + 1 < n ? t[(v >> 6) & 63] : '=',
                     i + 2 < n ? t[v & 63] : '='};
        rc |= s_put(b, q, 4);
    }
    return rc | s_put(b, "\"", 1);
}

/* Bytes as "data" (text) or "dataBase64". */
static int s_bytes(struct s_buf *b, const char *text_key, const char *b64_key,
                   const uint8_t *p, size_t n)
{
    int text = s_is_utf8(p, n);
    int rc = s_puts(b, ",\"");
    rc |= s_puts(b, text ? text_key : b64_key);
    rc |= s_puts(b, "\":");
    return rc | (text ? s_json_str(b, p, n) : s_b64(b, p, n));
}

static int s_line(struct s_buf *b, const struct fanout_message *m, int collapsed)
{
    const struct fanout_record *r = m->records[0];
    char num[64];
    int rc = s_puts(b, "{\"source\":");
    rc |= s_json_str(b, (const uint8_t *)r->source_arn, strlen(r->source_arn));
    rc |= s_bytes(b, "key", "keyBase64", m->key, m->key_len);
    rc |= s_puts(b, ",\"sequenceNumber\":");
    rc |= s_json_str(b, (const uint8_t *)r->sequence_number, strlen(r->sequence_number));
    snprintf(num, sizeof num, ",\"subSequenceNumber\":%llu",
             (unsigned long long)r->sub_sequence_number);
    rc |= s_puts(b, num);
    if (r->explicit_hash_key) {
        rc |= s_puts(b, ",\"explicitHashKey\":");
        rc |= s_json_str(b, (const uint8_t *)r->explicit_hash_key,
                         strlen(r->explicit_hash_key));
    }
    if (collapsed) {
        snprintf(num, sizeof num, ",\"records\":%zu", m->record_count);
        rc |= s_puts(b, num);
    } else {
        rc |= s_puts(b, ",\"action\":");
        rc |= s_json_str(b, (const uint8_t *)r->action, strlen(r->action));
    }
    rc |= s_bytes(b, "data", "dataBase64", m->body, m->body_len);
    return rc | s_puts(b, "}\n");
}

/* ---- the plugin ---- */

static int s_init(const struct fanout_host *host, void **state, struct fanout_error *err)
{
    (void)err;
    s_host = host;
    *state = NULL;
    return 0;
}

static int s_validate(const struct fanout_target *t, char *err, size_t err_len)
{
    if (!t->destination || !*t->destination) {
        snprintf(err, err_len, "expected a file path or \"-\" for standard output");
        return -1;
    }
    if (t->role || t->region) {
        snprintf(err, err_len, "a file target has no AWS role or region; remove \"%s\"",
                 t->role ? "role" : "region");
        return -1;
    }
    return 0;
}

static int s_open(void *state, const struct fanout_target *t, void **out,
                  struct fanout_error *err)
{
    (void)state;
    const struct file_options *o = t->options;
    struct file_instance *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    in->fsync = o && o->fsync;
    if (strcmp(t->destination, "-") == 0) {
        in->fd = STDOUT_FILENO;
    } else {
        in->fd = open(t->destination, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (in->fd < 0) {
            snprintf(err->code, sizeof err->code, "%s", "OpenFailed");
            snprintf(err->message, sizeof err->message, "cannot open %s for appending: %s",
                     t->destination, strerror(errno));
            free(in);
            return -1;
        }
        in->owned = 1;
    }
    in->path = strdup(t->destination);
    pthread_mutex_init(&in->lock, NULL);
    *out = in;
    return 0;
}

static int s_send(void *instance, const struct fanout_batch *batch,
                  struct fanout_outcome *outcomes)
{
    struct file_instance *in = instance;
    struct s_buf b = {0};
    int collapsed = batch->collapse != FANOUT_COLLAPSE_NONE;
    for (size_t i = 0; i < batch->count; i++) {
        if (s_line(&b, batch->messages[i], collapsed) != 0) {
            for (size_t j = 0; j < batch->count; j++)
                fanout_outcome_set(&outcomes[j], FANOUT_RETRY, "OutOfMemory",
                                   "out of memory formatting the lines");
            free(b.p);
            return -1;
        }
    }
    pthread_mutex_lock(&in->lock);
    size_t done = 0;
    int e = 0;
    while (done < b.len) {
        ssize_t w = write(in->fd, b.p + done, b.len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            e = errno;
            break;
        }
        done += (size_t)w;
    }
    if (!e && in->fsync && in->owned && fsync(in->fd) != 0)
        e = errno;
    pthread_mutex_unlock(&in->lock);
    free(b.p);
    if (e) {
        /* A full or failing disk may recover; anything else will not. */
        int st = (e == ENOSPC || e == EIO || e == EAGAIN) ? FANOUT_RETRY : FANOUT_FATAL;
        for (size_t j = 0; j < batch->count; j++)
            fanout_outcome_set(&outcomes[j], st, "WriteFailed", "writing %s: %s", in->path,
                               strerror(e));
        if (s_host)
            s_host->log(FANOUT_LOG_WARN, "file", "writing %s: %s", in->path, strerror(e));
        return -1;
    }
    return 0;
}

static void s_close(void *instance)
{
    struct file_instance *in = instance;
    if (in->owned)
        close(in->fd);
    pthread_mutex_destroy(&in->lock);
    free(in->path);
    free(in);
}

static const struct fanout_option s_options[] = {
    {.name = "fsync",
     .type = FANOUT_OPT_BOOL,
     .offset = offsetof(struct file_options, fsync),
     .default_int = 0,
     .description = "fsync the file after each batch"},
    {.name = NULL},
};

FANOUT_PLUGIN_DEFINE(.name = "file", .version = "1.0.0",
                     .description = "JSON Lines to a local file or stdout (-)",
                     .destination_example = "/tmp/out.jsonl (or - for stdout)",
                     .limits = {.max_messages_per_call = 1000,
                                .max_call_bytes = 16u << 20,
                                .per_message_overhead = 256},
                     .collapse_modes = FANOUT_COLLAPSE_ALL,
                     .default_collapse = FANOUT_COLLAPSE_NONE, .options = s_options,
                     .options_size = sizeof(struct file_options), .init = s_init,
                     .validate = s_validate, .open = s_open, .send = s_send,
                     .close = s_close);
