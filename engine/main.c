/* fanout: the command line, and the Lambda `bootstrap` when
 * AWS_LAMBDA_RUNTIME_API is set. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "aws/client.h"
#include "core/engine.h"
#include "aws/http.h"
#include "common/log.h"
#include "core/runtime.h"
#include "core/store_ddb.h"

#ifndef FANOUT_VERSION
#define FANOUT_VERSION "dev"
#endif

enum { EXIT_DELIVERY = 1, EXIT_USAGE = 2 };

/* fanout invoke --timeout: default as Lambda's longest timeout, at most a
 * day. */
#define S_INVOKE_TIMEOUT_DEFAULT_S 900
#define S_INVOKE_TIMEOUT_MAX_S     86400

static int s_read_all(const char *path, struct fanout_buf *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (fanout_buf_append(b, chunk, n) != 0) {
            rc = -1;
            errno = ENOMEM;
            break;
        }
    if (ferror(f))
        rc = -1;
    if (f != stdin)
        fclose(f);
    return rc;
}

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

static int64_t s_remaining_ms(void)
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

static int s_engine(const char *config, const char *plugin_path, struct fanout_engine **out)
{
    struct fanout_engine_config cfg = {0};
    char err[1024];
    if (fanout_engine_config_from_env(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "fanout: %s\n", err);
        return EXIT_USAGE;
    }
    cfg.config_path = config ? config : getenv("FANOUT_CONFIG");
    cfg.plugin_path = plugin_path;
    char table[256];
    if (!cfg.config_path) {
        /* the DynamoDB store: FANOUT_TABLE, or <function name>Targets */
        cfg.table = fanout_store_ddb_table_name(table, sizeof table, err, sizeof err);
        if (!cfg.table) {
            fprintf(stderr, "fanout: %s\n", err);
            return EXIT_USAGE;
        }
    }
    s_host = *fanout_host_default();
    s_host.remaining_ms = s_remaining_ms;
    *out = fanout_engine_new(&cfg, &s_host, err, sizeof err);
    if (!*out) {
        fprintf(stderr, "fanout: %s\n", err);
        return EXIT_USAGE;
    }
    return 0;
}

/* ---- invoke ---- */

static void s_usage_invoke(FILE *f)
{
    fprintf(f,
            "usage: fanout invoke [--config FILE] [--event FILE|-] [--response FILE]\n"
            "                     [--plugin-path DIRS] [--verbose|--quiet]\n"
            "\n"
            "Run one Lambda event (Kinesis, DynamoDB Streams or SNS) through the\n"
            "engine: every record goes to every active target of its source.\n"
            "\n"
            "  --config FILE       mapping file (default: $FANOUT_CONFIG)\n"
            "  --event FILE|-      the event; - or no --event reads standard input\n"
            "  --response FILE     write the Lambda response (batchItemFailures) there\n"
            "  --plugin-path DIRS  colon-separated plugin directories, searched before\n"
            "                      /opt/fanout/plugins and the install directory\n"
            "  --verbose, --quiet  log at debug level, or warnings and errors only\n"
            "  --repeat N          run the event N times in this process (warm engine,\n"
            "                      for benchmarks); prints each run's time on stderr\n"
            "  --timeout SECONDS   total time for the invocation, like Lambda's timeout\n"
            "                      (default $FANOUT_INVOKE_TIMEOUT_SECONDS, else 900):\n"
            "                      sends and retries stop there and the records not\n"
            "                      delivered by then are reported failed\n"
            "\n"
            "Exit status: 0 every record reached every active target, 1 some record\n"
            "failed (each is logged with its source, sequence number and reason),\n"
            "2 usage or configuration error, or an event that cannot be read at all\n"
            "(not JSON, no \"Records\" array): then no record is acknowledged.\n"
            "\n"
            "Example:\n"
            "  fanout invoke --config examples/mappings.json --event "
            "examples/events/kinesis.json\n");
}

static const struct option s_invoke_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"event", required_argument, NULL, 'e'},
    {"response", required_argument, NULL, 'r'},
    {"plugin-path", required_argument, NULL, 'p'},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"repeat", required_argument, NULL, 'n'},
    {"timeout", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int s_cmd_invoke(int argc, char **argv)
{
    const char *config = NULL, *event = "-", *response = NULL, *plugin_path = NULL;
    unsigned repeat = 1;
    const char *timeout = getenv("FANOUT_INVOKE_TIMEOUT_SECONDS");
    const char *timeout_from = "FANOUT_INVOKE_TIMEOUT_SECONDS";
    if (timeout && !*timeout)
        timeout = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:e:r:p:vqhn:t:", s_invoke_opts, NULL)) != -1) {
        switch (c) {
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
                return EXIT_USAGE;
            }
            repeat = (unsigned)n;
            break;
        }
        case 'c': config = optarg; break;
        case 'e': event = optarg; break;
        case 'r': response = optarg; break;
        case 'p': plugin_path = optarg; break;
        case 'v': fanout_log_set(FANOUT_LOG_DEBUG, !isatty(2)); break;
        case 'q': fanout_log_set(FANOUT_LOG_WARN, !isatty(2)); break;
        case 'h': s_usage_invoke(stdout); return 0;
        default: s_usage_invoke(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fanout invoke: unexpected argument \"%s\"\n", argv[optind]);
        s_usage_invoke(stderr);
        return EXIT_USAGE;
    }
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
            return EXIT_USAGE;
        }
        timeout_ms = (int64_t)(secs * 1000.0);
        if (timeout_ms < 1)
            timeout_ms = 1;
    }
    struct fanout_buf ev = {0};
    if (s_read_all(event, &ev) != 0) {
        fprintf(stderr, "fanout invoke: cannot read the event from %s: %s\n",
                strcmp(event, "-") ? event : "standard input", strerror(errno));
        fanout_buf_free(&ev);
        return EXIT_USAGE;
    }
    struct fanout_engine *e;
    int rc = s_engine(config, plugin_path, &e);
    if (rc) {
        fanout_buf_free(&ev);
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
        int r = fanout_engine_invoke(e, ev.ptr ? (char *)ev.ptr : "", ev.len, &res, err,
                                     sizeof err);
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
    rc = fanout_engine_invoke(e, ev.ptr ? (char *)ev.ptr : "", ev.len, &res, err,
                              sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (repeat > 1)
        fprintf(stderr, "run %u: %.3f ms\n", repeat,
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    atomic_store(&s_invoke_deadline_ms, INT64_MAX);
    if (rc < 0) {
        /* nothing was sent and no record can be named: as a usage error */
        LOG_ERROR("event", "%s: %s", strcmp(event, "-") ? event : "standard input", err);
        rc = EXIT_USAGE;
    } else {
        LOG_INFO("invoke", "%zu records, %zu targets, %zu records failed", res.records,
                 res.target_count, res.failed_records);
        if (response) {
            struct fanout_buf out = {0};
            FILE *f = fopen(response, "w");
            if (!f || fanout_result_response(&res, &out) != 0 ||
                fwrite(out.ptr, 1, out.len, f) != out.len) {
                fprintf(stderr, "fanout invoke: cannot write %s: %s\n", response,
                        strerror(errno));
                rc = EXIT_USAGE;
            }
            if (f)
                fclose(f);
            fanout_buf_free(&out);
        }
        fanout_result_clean_up(&res);
    }
    fanout_buf_free(&ev);
    fanout_engine_destroy(e);
    return rc;
}

/* ---- plugins ---- */

struct s_scan {
    int json;
    int count;
    int refused;
    struct fanout_buf out;
};

static void s_scan_cb(void *ctx, const char *type, const char *path,
                      const struct fanout_loaded_plugin *p, const char *refusal)
{
    struct s_scan *s = ctx;
    struct fanout_buf *o = &s->out;
    s->count++;
    s->refused += !p;
    if (!s->json) {
        if (!p) {
            fanout_buf_appendf(o, "%-12s REFUSED  %s\n", type, refusal);
            return;
        }
        const struct fanout_plugin *d = &p->desc;
        fanout_buf_appendf(o, "%-12s %-8s abi %u.%u  %s\n", type,
                           d->version ? d->version : "?", d->abi_major, d->abi_minor,
                           d->description ? d->description : "");
        fanout_buf_appendf(o, "%-12s          %s\n", "", path);
        fanout_buf_appendf(o,
                           "%-12s          limits: %u messages/call, %llu bytes/message, "
                           "%llu bytes/call (0 = none)\n",
                           "", d->limits.max_messages_per_call,
                           (unsigned long long)d->limits.max_message_bytes,
                           (unsigned long long)d->limits.max_call_bytes);
        fanout_buf_appendf(o, "%-12s          collapse:", "");
        for (int i = 0; i < 4; i++)
            if (d->collapse_modes & FANOUT_COLLAPSE_BIT(i))
                fanout_buf_appendf(o, " %s%s", fanout_collapse_name(i),
                                   (int)d->default_collapse == i ? " (default)" : "");
        fanout_buf_append_str(o, "\n");
        for (const struct fanout_option *opt = d->options; opt && opt->name; opt++)
            fanout_buf_appendf(o, "%-12s          option %s: %s\n", "", opt->name,
                               opt->description ? opt->description : "");
        return;
    }
    json_t *j = json_pack("{s:s, s:s, s:b}", "type", type, "path", path, "ok", p != NULL);
    if (!p) {
        json_object_set_new(j, "error", json_string(refusal));
    } else {
        const struct fanout_plugin *d = &p->desc;
        char abi[32];
        snprintf(abi, sizeof abi, "%u.%u", d->abi_major, d->abi_minor);
        json_object_set_new(j, "abi", json_string(abi));
        json_object_set_new(j, "version", json_string(d->version ? d->version : ""));
        json_object_set_new(j, "description",
                            json_string(d->description ? d->description : ""));
        json_object_set_new(
            j, "limits",
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:b}", "maxMessagesPerCall",
                      (json_int_t)d->limits.max_messages_per_call, "maxMessageBytes",
                      (json_int_t)d->limits.max_message_bytes, "maxCallBytes",
                      (json_int_t)d->limits.max_call_bytes, "perMessageOverhead",
                      (json_int_t)d->limits.per_message_overhead, "perCallOverhead",
                      (json_int_t)d->limits.per_call_overhead, "keyCounts",
                      d->limits.key_counts != 0));
        json_t *modes = json_array();
        for (int i = 0; i < 4; i++)
            if (d->collapse_modes & FANOUT_COLLAPSE_BIT(i))
                json_array_append_new(modes, json_string(fanout_collapse_name(i)));
        json_object_set_new(j, "collapse", modes);
        json_object_set_new(j, "defaultCollapse",
                            json_string(fanout_collapse_name((int)d->default_collapse)));
        json_t *opts = json_array();
        for (const struct fanout_option *opt = d->options; opt && opt->name; opt++)
            json_array_append_new(opts,
                                  json_pack("{s:s, s:s}", "name", opt->name, "description",
                                            opt->description ? opt->description : ""));
        json_object_set_new(j, "options", opts);
    }
    char *text = json_dumps(j, JSON_COMPACT);
    fanout_buf_appendf(o, "%s%s", s->count > 1 ? "," : "", text ? text : "{}");
    free(text);
    json_decref(j);
}

static int s_cmd_plugins(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"plugin-path", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *usage =
        "usage: fanout plugins [--json] [--plugin-path DIRS]\n"
        "\n"
        "List the plugins found on the search path ($FANOUT_PLUGIN_PATH,\n"
        "/opt/fanout/plugins, then the install directory) with their ABI,\n"
        "description, limits and collapse modes, and the ones refused with\n"
        "the reason. Exit status 1 when some plugin was refused.\n";
    struct s_scan s = {0};
    const char *plugin_path = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "jp:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': s.json = 1; break;
        case 'p': plugin_path = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fanout plugins: unexpected argument \"%s\"\n%s", argv[optind],
                usage);
        return EXIT_USAGE;
    }
    /* Refusals are part of the listing; do not log them a second time. */
    if (!fanout_log_enabled(FANOUT_LOG_DEBUG))
        fanout_log_set(FANOUT_LOG_ERROR, !isatty(2));
    struct fanout_loader *l = fanout_loader_new(fanout_host_default(), plugin_path);
    if (!l) {
        fprintf(stderr, "fanout plugins: cannot set up the loader\n");
        return EXIT_USAGE;
    }
    if (s.json)
        fanout_buf_append_str(&s.out, "[");
    fanout_loader_scan(l, s_scan_cb, &s);
    if (s.json)
        fanout_buf_append_str(&s.out, "]\n");
    else if (!s.count)
        fanout_buf_appendf(&s.out, "no plugins found in %s\n",
                           fanout_loader_search_path(l));
    if (!s.json) {
        struct fanout_engine_config cfg;
        char err[256];
        if (fanout_engine_config_from_env(&cfg, err, sizeof err) == 0)
            fanout_buf_appendf(&s.out,
                               "\nsearch path: %s\nretries: %u attempts, backoff full "
                               "jitter from %u ms up to %u ms; %u targets/batches in "
                               "parallel\n",
                               fanout_loader_search_path(l), cfg.retry_attempts,
                               cfg.retry_base_ms, cfg.retry_cap_ms, cfg.max_parallel);
        const struct fanout_retry_policy *ap = fanout_aws_policy();
        fanout_buf_appendf(
            &s.out,
            "AWS requests: %u attempts, backoff full jitter from %u ms up to "
            "%u ms, %u ms per attempt\n",
            ap->max_attempts, ap->base_ms, ap->cap_ms, ap->request_timeout_ms);
    }
    fwrite(s.out.ptr ? s.out.ptr : (uint8_t *)"", 1, s.out.len, stdout);
    fanout_buf_free(&s.out);
    fanout_loader_destroy(l);
    return s.refused ? 1 : 0;
}

/* ---- validate ---- */

/* One line of the report: control characters (from a mapping's own
 * strings) shown as \xNN, never sent to the terminal. */
static void s_print_line(const char *prefix, const char *text)
{
    fputs(prefix, stdout);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
    putchar('\n');
}

static int s_cmd_validate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"plugin-path", required_argument, NULL, 'p'},
        {"table", required_argument, NULL, 'T'},
        {"table-arn", required_argument, NULL, 'A'},
        {"function", required_argument, NULL, 'F'},
        {"function-arn", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *usage =
        "usage: fanout validate [--config FILE] [--plugin-path DIRS]\n"
        "                       [--table NAME | --table-arn ARN | --function NAME |\n"
        "                        --function-arn ARN]\n"
        "\n"
        "Check the mappings (a file with --config or FANOUT_CONFIG, else the\n"
        "DynamoDB table named by --table, --table-arn, --function (<NAME>Targets),\n"
        "--function-arn, or FANOUT_TABLE): the schema of every mapping, then each mapping\n"
        "against its plugin (installed, collapse mode accepted, options,\n"
        "destination form). Prints one line per problem. Exit status 0 when\n"
        "all mappings are valid, 2 otherwise.\n"
        "\n"
        "Example:\n"
        "  fanout validate --config examples/mappings.json\n";
    const char *config = NULL, *plugin_path = NULL;
    const char *table = NULL, *table_arn = NULL, *function = NULL, *function_arn = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'p': plugin_path = optarg; break;
        case 'T': table = optarg; break;
        case 'A': table_arn = optarg; break;
        case 'F': function = optarg; break;
        case 'R': function_arn = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fanout validate: unexpected argument \"%s\"\n%s", argv[optind],
                usage);
        return EXIT_USAGE;
    }
    /* the table flags of the other commands: the DynamoDB store */
    char tname[300], tregion[64], terr[512];
    int t = fanout_cli_table(table, table_arn, function, function_arn, tname, sizeof tname,
                             tregion, sizeof tregion, terr, sizeof terr);
    if (t < 0 || (t == 0 && config)) {
        fprintf(stderr, "fanout validate: %s\n%s",
                t < 0 ? terr : "give --config FILE or a table, not both", usage);
        return EXIT_USAGE;
    }
    if (t == 0) {
        setenv("FANOUT_TABLE", tname, 1);
        unsetenv("FANOUT_CONFIG");
        const char *env_region = getenv("AWS_REGION");
        if (tregion[0] && (!env_region || !*env_region))
            setenv("AWS_REGION", tregion, 1);
    }
    /* Invalid mappings are printed here, one line each, rather than logged
     * as the engine does while it runs. */
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    fanout_log_set_fd(devnull);
    struct fanout_engine *e;
    int rc = s_engine(config, plugin_path, &e);
    fanout_log_set_fd(-1);
    if (devnull >= 0)
        close(devnull);
    if (rc)
        return rc;
    const struct fanout_mapping_set *set;
    char err[1024];
    struct fanout_store *st = fanout_engine_store(e);
    if (st->ops->all(st, &set, err, sizeof err) != 0) {
        fprintf(stderr, "fanout validate: %s\n", err);
        fanout_engine_destroy(e);
        return EXIT_USAGE;
    }
    size_t problems = set->problem_count;
    for (size_t i = 0; i < set->problem_count; i++)
        s_print_line("invalid: ", set->problems[i]);
    for (size_t i = 0; i < set->count; i++) {
        if (fanout_engine_check_mapping(e, set->items[i], err, sizeof err) != 0) {
            s_print_line("invalid: ", err);
            problems++;
        } else if (set->items[i]->ignored) {
            s_print_line("warning: ", set->items[i]->ignored);
        }
    }
    printf("%zu mappings, %zu valid, %zu invalid\n", set->count + set->problem_count,
           set->count + set->problem_count - problems, problems);
    fanout_engine_destroy(e);
    return problems ? EXIT_USAGE : 0;
}

/* ---- Lambda runtime ---- */

struct s_lambda {
    struct fanout_engine *e;
    int partial; /* report batchItemFailures instead of failing the invocation */
};

static int s_lambda_handler(void *ctx, const struct fanout_invocation *inv,
                            struct fanout_buf *response, char *error_type,
                            size_t error_type_len, char *error_message,
                            size_t error_message_len)
{
    struct s_lambda *l = ctx;
    struct fanout_result res;
    char err[1024];
    int rc = fanout_engine_invoke(l->e, inv->event, inv->event_len, &res, err, sizeof err);
    if (rc < 0) {
        LOG_ERROR("event", "request %s: %s", inv->request_id, err);
        snprintf(error_type, error_type_len, "Fanout.InvalidEvent");
        snprintf(error_message, error_message_len, "%s", err);
        return -1;
    }
    int ret = 0;
    if (rc == 0 || l->partial) {
        fanout_result_response(&res, response);
    } else {
        snprintf(error_type, error_type_len, "Fanout.DeliveryFailed");
        snprintf(error_message, error_message_len,
                 "%zu of %zu records were not delivered to every target (see the log "
                 "for each record and reason); the batch will be retried",
                 res.failed_records, res.records);
        ret = -1;
    }
    fanout_result_clean_up(&res);
    return ret;
}

static int s_truthy(const char *v)
{
    return v && (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes"));
}

static int s_lambda(const char *api)
{
    struct s_lambda l = {0};
    struct fanout_engine_config cfg = {0};
    char err[1024];
    char table[256];
    if (fanout_engine_config_from_env(&cfg, err, sizeof err) == 0) {
        cfg.config_path = getenv("FANOUT_CONFIG");
        if (!cfg.config_path)
            cfg.table = fanout_store_ddb_table_name(table, sizeof table, err, sizeof err);
        if (cfg.config_path || cfg.table)
            l.e = fanout_engine_new(&cfg, NULL, err, sizeof err);
    }
    if (!l.e) {
        LOG_ERROR("runtime", "cannot start: %s", err);
        fanout_runtime_init_error(api, "Fanout.InitError", err);
        return EXIT_USAGE;
    }
    /* Partial batch responses are only honoured when the event source
     * mapping has ReportBatchItemFailures; without it Lambda would read them
     * as success and drop the failed records, so failing the invocation is
     * the default. */
    l.partial = s_truthy(getenv("FANOUT_REPORT_BATCH_ITEM_FAILURES"));
    struct fanout_runtime_options o = {.api = api, .handler = s_lambda_handler, .ctx = &l};
    int rc = fanout_runtime_run(&o);
    fanout_engine_destroy(l.e);
    return rc == 0 ? 0 : EXIT_DELIVERY;
}

/* ---- dispatch ---- */

static void s_usage(FILE *f)
{
    fprintf(f, "usage: fanout <command> [options]      (fanout <command> --help for more)\n"
               "\n"
               "Stream fan-out: forwards Kinesis and DynamoDB Streams records to many\n"
               "targets through destination plugins.\n"
               "\n"
               "Commands:\n"
               "  invoke     run one event locally (--config FILE --event FILE|-)\n"
               "  plugins    list the plugins on the search path, and the refused ones\n"
               "  validate   check a mapping file against the schema and the plugins\n"
               "  register, list, update, activate, deactivate, unregister\n"
               "             manage the mappings in the DynamoDB table\n"
               "\n"
               "As an AWS Lambda custom runtime (bootstrap), fanout runs the Runtime API\n"
               "loop when AWS_LAMBDA_RUNTIME_API is set and no command is given.\n"
               "\n"
               "Environment: FANOUT_CONFIG or FANOUT_TABLE, FANOUT_PLUGIN_PATH,\n"
               "FANOUT_MAX_PARALLEL, FANOUT_RETRY_*, FANOUT_AWS_*, FANOUT_LOG_LEVEL,\n"
               "FANOUT_INVOKE_TIMEOUT_SECONDS, FANOUT_SKIP_INVALID_MAPPINGS,\n"
               "FANOUT_LOG_FORMAT, FANOUT_REPORT_BATCH_ITEM_FAILURES, and the AWS SDKs'\n"
               "AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL[_<SERVICE>] (see the README).\n");
}

struct s_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *later; /* not in this build yet: where it comes from */
};

static const struct s_command s_commands[] = {
    {"invoke", s_cmd_invoke, NULL},
    {"plugins", s_cmd_plugins, NULL},
    {"validate", s_cmd_validate, NULL},
    {"register", NULL, "the DynamoDB mapping store"},
    {"list", NULL, "the DynamoDB mapping store"},
    {"update", NULL, "the DynamoDB mapping store"},
    {"activate", NULL, "the DynamoDB mapping store"},
    {"deactivate", NULL, "the DynamoDB mapping store"},
    {"unregister", NULL, "the DynamoDB mapping store"},
    {"deploy", NULL, "the deployment commands"},
    {"destroy", NULL, "the deployment commands"},
    {"hook", NULL, "the deployment commands"},
    {"unhook", NULL, "the deployment commands"},
    {"pause", NULL, "the deployment commands"},
    {"resume", NULL, "the deployment commands"},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    /* A peer closing a kept-alive connection must be an error, not a
     * signal that kills the process. */
    signal(SIGPIPE, SIG_IGN);
    fanout_log_init();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || fanout_http_global_init() != 0) {
        fprintf(stderr, "fanout: cannot initialise libcurl\n");
        return EXIT_USAGE;
    }
    char aws_err[256];
    if (fanout_aws_init(s_remaining_ms, aws_err, sizeof aws_err) != 0) {
        fprintf(stderr, "fanout: %s\n", aws_err);
        fanout_http_global_cleanup();
        curl_global_cleanup();
        return EXIT_USAGE;
    }
    int rc;
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (argc < 2 && api && *api) {
        rc = s_lambda(api);
    } else if (argc < 2) {
        s_usage(stderr);
        rc = EXIT_USAGE;
    } else if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
               !strcmp(argv[1], "help")) {
        s_usage(stdout);
        rc = 0;
    } else if (!strcmp(argv[1], "--version")) {
        printf("fanout %s (plugin ABI %d.%d)\n", FANOUT_VERSION, FANOUT_ABI_MAJOR,
               FANOUT_ABI_MINOR);
        rc = 0;
    } else {
        const struct s_command *cmd = s_commands;
        while (cmd->name && strcmp(cmd->name, argv[1]) != 0)
            cmd++;
        if (!cmd->name) {
            fprintf(stderr, "fanout: unknown command \"%s\"\n\n", argv[1]);
            s_usage(stderr);
            rc = EXIT_USAGE;
        } else if (!cmd->run && fanout_cli_has(cmd->name)) {
            rc = fanout_cli_run(cmd->name, argc - 1, argv + 1);
        } else if (!cmd->run) {
            fprintf(stderr,
                    "fanout %s: not available in this build yet; it comes with %s\n",
                    cmd->name, cmd->later);
            rc = EXIT_USAGE;
        } else {
            rc = cmd->run(argc - 1, argv + 1);
        }
    }
    fanout_http_global_cleanup();
    curl_global_cleanup();
    return rc;
}
