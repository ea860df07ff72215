/* Running events: `fanout invoke` (one event, locally) and the Lambda
 * Runtime API loop, over one engine each, under one deadline. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_cmd.h"
#include "common/log.h"
#include "core/engine.h"
#include "core/metrics.h"
#include "core/runtime.h"
#include "core/store_ddb.h"

/* Why an SNS event's failed records fail the invocation rather than being
 * named in batchItemFailures. */
#define S_SNS_NO_PARTIAL                                                                   \
    "an SNS event: SNS reads any answer as success, so failed records fail the "           \
    "invocation even with FANOUT_REPORT_BATCH_ITEM_FAILURES=true"

/* fanout invoke --timeout: default as Lambda's longest timeout, at most a
 * day. */
#define S_INVOKE_TIMEOUT_DEFAULT_S 900
#define S_INVOKE_TIMEOUT_MAX_S     86400

/* `fanout invoke --timeout`: the deadline of the local invocation (Unix
 * epoch ms), INT64_MAX when none; the Lambda loop has its own (runtime.c).
 * The engine's retries, every plugin (host->remaining_ms) and every AWS
 * request (fanout_aws_init) see the earlier of the two. */
static _Atomic int64_t s_invoke_deadline_ms = INT64_MAX;

static int64_t s_epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fanout_cli_remaining_ms(void)
{
    int64_t left = fanout_runtime_remaining_ms();
    int64_t d = atomic_load_explicit(&s_invoke_deadline_ms, memory_order_relaxed);
    if (d != INT64_MAX) {
        int64_t mine = d - s_epoch_ms();
        if (mine < 0)
            mine = 0;
        if (mine < left)
            left = mine;
    }
    return left;
}

static struct fanout_host s_host;

int cli_engine(const char *config, const char *plugin_path, struct fanout_engine **out)
{
    struct fanout_engine_config cfg = {0};
    char err[1024];
    if (fanout_engine_config_from_env(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "fanout: %s\n", err);
        return CLI_USAGE;
    }
    cfg.config_path = config ? config : getenv("FANOUT_CONFIG");
    cfg.plugin_path = plugin_path;
    char table[256];
    if (!cfg.config_path) {
        /* the DynamoDB store: FANOUT_TABLE, or <function name>Targets */
        cfg.table = fanout_store_ddb_table_name(table, sizeof table, err, sizeof err);
        if (!cfg.table) {
            fprintf(stderr, "fanout: %s\n", err);
            return CLI_USAGE;
        }
    }
    s_host = *fanout_host_default();
    s_host.remaining_ms = fanout_cli_remaining_ms;
    *out = fanout_engine_new(&cfg, &s_host, err, sizeof err);
    if (!*out) {
        fprintf(stderr, "fanout: %s\n", err);
        return CLI_USAGE;
    }
    return 0;
}

/* ---- invoke ---- */

/* The event of `fanout invoke`: a regular file mapped read-only (its pages
 * are the page cache's, mapped in one go by MAP_POPULATE: no copy, no page
 * fault per page) or, to be changed, read into memory of its own in huge
 * pages; anything else (standard input, a pipe) read into `buf`. The text
 * is followed by a NUL either way. */
struct s_event {
    const char *text;
    char *writable; /* `text` when it may be changed (decoded in place) */
    size_t len;
    void *map; /* the mapping, map_len bytes, or NULL */
    size_t map_len;
    struct fanout_sbuf buf;
};

#define S_HUGE (2u << 20)

/* Reads `fd` (a regular file of `size` > 0 bytes) into an anonymous mapping
 * at a 2 MiB boundary, in huge pages: a few page faults, where a private
 * writable map of the file takes one per 4 KiB page written (an 8 MB event
 * decoded in place is written all over: 2,100 faults and 13 ms on this
 * project's VM, against 84 faults and 1 ms read so). The byte after the
 * text is 0. 0, or -1 with errno set. */
static int s_load_event(int fd, size_t size, struct s_event *ev)
{
    if (size > SIZE_MAX - 2 * S_HUGE) {
        errno = EFBIG;
        return -1;
    }
    size_t whole = size / S_HUGE * S_HUGE, up = whole + S_HUGE; /* the text and its NUL */
    size_t map_len = up + S_HUGE; /* and room to start at a boundary */
    char *base =
        mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return -1;
    char *text = (char *)(((uintptr_t)base + S_HUGE - 1) & ~(uintptr_t)(S_HUGE - 1));
    /* the last huge page too when the text fills half of it or more (at
     * most 1 MiB resident for nothing, against 256 faults or more) */
    fanout_advise_huge(text, size - whole >= S_HUGE / 2 ? up : whole);
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, text + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            munmap(base, map_len);
            errno = e;
            return -1;
        }
        if (n == 0) /* shorter than it was: what it holds */
            break;
        got += (size_t)n;
    }
    ev->map = base;
    ev->map_len = map_len;
    ev->text = text;
    ev->writable = text;
    ev->len = got;
    return 0;
}

/* Maps `fd` (a regular file of `size` > 0 bytes) read-only at the start of
 * an anonymous reservation one byte longer, rounded to pages: the byte
 * after the text is 0 also when the size is a multiple of the page size.
 * 0, or -1 with errno set. */
static int s_map_event(int fd, size_t size, struct s_event *ev)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size > SIZE_MAX - page) {
        errno = EFBIG;
        return -1;
    }
    size_t map_len = (size + page) / page * page;
    void *base = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return -1;
    if (mmap(base, size, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_POPULATE, fd, 0) ==
        MAP_FAILED) {
        int e = errno;
        munmap(base, map_len);
        errno = e;
        return -1;
    }
    ev->map = base;
    ev->map_len = map_len;
    ev->text = base;
    ev->len = size;
    return 0;
}

/* The event at `path` ("-": standard input); `writable`: the text may be
 * changed (s_event.writable). */
static int s_read_event(const char *path, int writable, struct s_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->text = "";
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return -1;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uintmax_t)st.st_size < SIZE_MAX) {
        int rc = writable ? s_load_event(fileno(f), (size_t)st.st_size, ev)
                          : s_map_event(fileno(f), (size_t)st.st_size, ev);
        int e = errno;
        if (f != stdin)
            fclose(f);
        errno = e;
        return rc;
    }
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (fanout_sbuf_put(&ev->buf, chunk, n) != 0) {
            rc = -1;
            errno = ENOMEM;
            break;
        }
    if (ferror(f))
        rc = -1;
    if (f != stdin)
        fclose(f);
    if (ev->buf.bytes) {
        ev->text = (const char *)ev->buf.bytes;
        ev->writable = writable ? (char *)ev->buf.bytes : NULL;
        ev->len = ev->buf.len;
    }
    return rc;
}

static void s_event_clean_up(struct s_event *ev)
{
    if (ev->map)
        munmap(ev->map, ev->map_len);
    fanout_sbuf_free(&ev->buf);
    memset(ev, 0, sizeof *ev);
}

static const struct option s_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"event", required_argument, NULL, 'e'},
    {"response", required_argument, NULL, 'r'},
    {"plugin-path", required_argument, NULL, 'p'},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"repeat", required_argument, NULL, 'n'},
    {"timeout", required_argument, NULL, 't'},
    {"metrics", no_argument, NULL, 'm'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cli_invoke(const struct cli_command *cmd, int argc, char **argv)
{
    const char *config = NULL, *event = "-", *response = NULL, *plugin_path = NULL;
    unsigned repeat = 1;
    const char *timeout = getenv("FANOUT_INVOKE_TIMEOUT_SECONDS");
    const char *timeout_from = "FANOUT_INVOKE_TIMEOUT_SECONDS";
    if (timeout && !*timeout)
        timeout = NULL;
    struct fanout_metrics_config metrics;
    char merr[256];
    if (fanout_metrics_config_from_env(&metrics, 0, merr, sizeof merr) != 0) {
        fprintf(stderr, "fanout invoke: %s\n", merr);
        return CLI_USAGE;
    }
    int c;
    while ((c = getopt_long(argc, argv, "c:e:r:p:vqhn:t:", s_opts, NULL)) != -1) {
        switch (c) {
        case 'm': metrics.enabled = 1; break;
        case 't':
            timeout = optarg;
            timeout_from = "--timeout";
            break;
        case 'n': {
            char *end;
            unsigned long n = strtoul(optarg, &end, 10);
            if (*end || n < 1 || n > 100000) {
                fprintf(stderr, "fanout invoke: --repeat expects 1 to 100000, got \"%s\"\n",
                        optarg);
                return CLI_USAGE;
            }
            repeat = (unsigned)n;
            break;
        }
        case 'c': config = optarg; break;
        case 'e': event = optarg; break;
        case 'r': response = optarg; break;
        case 'p': plugin_path = optarg; break;
        case 'v': fanout_log_set_level(FANOUT_LOG_DEBUG); break;
        case 'q': fanout_log_set_level(FANOUT_LOG_WARN); break;
        case 'h': cli_help(cmd, stdout); return CLI_OK;
        default: cli_help(cmd, stderr); return CLI_USAGE;
        }
    }
    if (cli_no_extra_args(cmd, argc, argv, optind) != CLI_OK)
        return CLI_USAGE;
    int64_t timeout_ms = S_INVOKE_TIMEOUT_DEFAULT_S * 1000;
    if (timeout) {
        char *end;
        errno = 0;
        double secs = strtod(timeout, &end);
        if (errno || end == timeout || *end || !isfinite(secs) || secs <= 0 ||
            secs > S_INVOKE_TIMEOUT_MAX_S) {
            fprintf(stderr,
                    "fanout invoke: %s \"%.64s\": expected a number of seconds above 0 "
                    "and at most %d\n",
                    timeout_from, timeout, S_INVOKE_TIMEOUT_MAX_S);
            return CLI_USAGE;
        }
        timeout_ms = (int64_t)(secs * 1000.0);
        if (timeout_ms < 1)
            timeout_ms = 1;
    }
    struct s_event ev;
    /* decoded in place when it is run once (--repeat runs it again) */
    if (s_read_event(event, repeat == 1, &ev) != 0) {
        fprintf(stderr, "fanout invoke: cannot read the event from %s: %s\n",
                strcmp(event, "-") ? event : "standard input", strerror(errno));
        s_event_clean_up(&ev);
        return CLI_USAGE;
    }
    struct fanout_engine *e;
    int rc = cli_engine(config, plugin_path, &e);
    if (rc) {
        s_event_clean_up(&ev);
        return rc;
    }
    struct fanout_result res;
    char err[1024];
    /* --repeat: the same event again in this process, as a warm Lambda
     * container would see it (benchmarks); the last run's result counts. */
    for (unsigned i = 1; i < repeat; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        atomic_store(&s_invoke_deadline_ms, s_epoch_ms() + timeout_ms);
        int r = fanout_engine_invoke(e, ev.text, ev.len, &res, err, sizeof err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (r >= 0)
            fanout_result_clean_up(&res);
        fprintf(stderr, "run %u: %.3f ms\n", i,
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    atomic_store(&s_invoke_deadline_ms, s_epoch_ms() + timeout_ms);
    rc = ev.writable
             ? fanout_engine_invoke_in_place(e, ev.writable, ev.len, &res, err, sizeof err)
             : fanout_engine_invoke(e, ev.text, ev.len, &res, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (repeat > 1)
        fprintf(stderr, "run %u: %.3f ms\n", repeat,
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    atomic_store(&s_invoke_deadline_ms, INT64_MAX);
    if (rc < 0) {
        /* nothing was sent and no record can be named: as a usage error */
        LOG_ERROR("event", "%s: %s", strcmp(event, "-") ? event : "standard input", err);
        rc = CLI_USAGE;
    } else {
        LOG_INFO("invoke", "%zu records, %zu targets, %zu records failed", res.records,
                 res.target_count, res.failed_records);
        fflush(stdout); /* the documents are whole lines of their own */
        fanout_metrics_emit(&metrics, &res, NULL, 1);
        if (response) {
            struct fanout_sbuf out = {0};
            FILE *f = fopen(response, "w");
            /* an SNS event has no partial batch response (SNS reads any
             * answer as success): what Lambda would post, its error */
            int no_partial = rc != 0 && res.no_partial_response;
            if (no_partial) {
                fanout_sbuf_puts(&out, "{\"errorType\":\"Fanout.DeliveryFailed\","
                                       "\"errorMessage\":");
                fanout_sbuf_json_str(&out, S_SNS_NO_PARTIAL, strlen(S_SNS_NO_PARTIAL));
                fanout_sbuf_puts(&out, "}");
            }
            if (!f || (no_partial ? !out.bytes : fanout_result_response(&res, &out) != 0) ||
                fwrite(out.bytes, 1, out.len, f) != out.len) {
                fprintf(stderr, "fanout invoke: cannot write %s: %s\n", response,
                        strerror(errno));
                rc = CLI_USAGE;
            }
            if (f)
                fclose(f);
            fanout_sbuf_free(&out);
        }
        fanout_result_clean_up(&res);
    }
    s_event_clean_up(&ev);
    fanout_engine_destroy(e);
    return rc;
}

/* ---- the Lambda runtime ---- */

struct s_lambda {
    struct fanout_engine *e;
    int partial; /* report batchItemFailures instead of failing the invocation */
    struct fanout_metrics_config metrics; /* EMF on stdout, on by default */
};

static int s_lambda_handler(void *ctx, const struct fanout_invocation *inv,
                            struct fanout_sbuf *response, char *error_type,
                            size_t error_type_len, char *error_message,
                            size_t error_message_len)
{
    struct s_lambda *l = ctx;
    struct fanout_result res;
    char err[1024];
    int rc =
        inv->event_writable
            ? fanout_engine_invoke_in_place(l->e, inv->event_writable, inv->event_len, &res,
                                            err, sizeof err)
            : fanout_engine_invoke(l->e, inv->event, inv->event_len, &res, err, sizeof err);
    if (rc < 0) {
        LOG_ERROR("event", "request %s: %s", inv->request_id, err);
        snprintf(error_type, error_type_len, "Fanout.InvalidEvent");
        snprintf(error_message, error_message_len, "%s", err);
        return -1;
    }
    fanout_metrics_emit(&l->metrics, &res, inv->request_id, 1);
    int ret = 0;
    if (rc == 0 || (l->partial && !res.no_partial_response)) {
        fanout_result_response(&res, response);
    } else {
        snprintf(error_type, error_type_len, "Fanout.DeliveryFailed");
        snprintf(error_message, error_message_len,
                 "%zu of %zu records were not delivered to every target (see the log "
                 "for each record and reason); the batch will be retried%s%s%s",
                 res.failed_records, res.records,
                 l->partial && res.no_partial_response ? " (" : "",
                 l->partial && res.no_partial_response ? S_SNS_NO_PARTIAL : "",
                 l->partial && res.no_partial_response ? ")" : "");
        ret = -1;
    }
    fanout_result_clean_up(&res);
    return ret;
}

static int s_truthy(const char *v)
{
    return v && (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes"));
}

int fanout_cli_lambda(const char *api)
{
    struct s_lambda l = {0};
    struct fanout_engine_config cfg = {0};
    char err[1024];
    char table[256];
    if (fanout_engine_config_from_env(&cfg, err, sizeof err) == 0 &&
        fanout_metrics_config_from_env(&l.metrics, 1, err, sizeof err) == 0) {
        cfg.config_path = getenv("FANOUT_CONFIG");
        if (!cfg.config_path)
            cfg.table = fanout_store_ddb_table_name(table, sizeof table, err, sizeof err);
        if (cfg.config_path || cfg.table)
            l.e = fanout_engine_new(&cfg, NULL, err, sizeof err);
    }
    if (!l.e) {
        LOG_ERROR("runtime", "cannot start: %s", err);
        fanout_runtime_init_error(api, "Fanout.InitError", err);
        return CLI_USAGE;
    }
    /* Partial batch responses are only honoured when the event source
     * mapping has ReportBatchItemFailures; without it Lambda would read them
     * as success and drop the failed records, so failing the invocation is
     * the default. */
    l.partial = s_truthy(getenv("FANOUT_REPORT_BATCH_ITEM_FAILURES"));
    struct fanout_runtime_options o = {.api = api, .handler = s_lambda_handler, .ctx = &l};
    int rc = fanout_runtime_run(&o);
    fanout_engine_destroy(l.e);
    return rc == 0 ? 0 : CLI_FAILED;
}
