/* The commands that look at this machine: `fanout plugins` (what the
 * loader finds) and `fanout validate` (the mappings against the schema and
 * the plugins). */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/client.h"
#include "cli/cli_cmd.h"
#include "common/log.h"
#include "core/engine.h"

/* ---- plugins ---- */

struct s_scan {
    int json;
    int count;
    int refused;
    struct fanout_sbuf out;
};

static void s_scan_cb(void *ctx, const char *type, const char *path,
                      const struct fanout_loaded_plugin *p, const char *refusal)
{
    struct s_scan *s = ctx;
    struct fanout_sbuf *o = &s->out;
    s->count++;
    s->refused += !p;
    if (!s->json) {
        if (!p) {
            fanout_sbuf_printf(o, "%-12s REFUSED  %s\n", type, refusal);
            return;
        }
        const struct fanout_plugin *d = &p->desc;
        fanout_sbuf_printf(o, "%-12s %-8s abi %u.%u  %s\n", type,
                           d->version ? d->version : "?", d->abi_major, d->abi_minor,
                           d->description ? d->description : "");
        fanout_sbuf_printf(o, "%-12s          %s\n", "", path);
        fanout_sbuf_printf(o,
                           "%-12s          limits: %u messages/call, %llu bytes/message, "
                           "%llu bytes/call (0 = none)\n",
                           "", d->limits.max_messages_per_call,
                           (unsigned long long)d->limits.max_message_bytes,
                           (unsigned long long)d->limits.max_call_bytes);
        fanout_sbuf_printf(o, "%-12s          collapse:", "");
        for (int i = 0; i < 4; i++)
            if (d->collapse_modes & FANOUT_COLLAPSE_BIT(i))
                fanout_sbuf_printf(o, " %s%s", fanout_collapse_name(i),
                                   (int)d->default_collapse == i ? " (default)" : "");
        fanout_sbuf_puts(o, "\n");
        for (const struct fanout_option *opt = d->options; opt && opt->name; opt++)
            fanout_sbuf_printf(o, "%-12s          option %s: %s\n", "", opt->name,
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
    fanout_sbuf_printf(o, "%s%s", s->count > 1 ? "," : "", text ? text : "{}");
    free(text);
    json_decref(j);
}

int cli_plugins(const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"plugin-path", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct s_scan s = {0};
    const char *plugin_path = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "jp:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': s.json = 1; break;
        case 'p': plugin_path = optarg; break;
        case 'h': cli_help(cmd, stdout); return CLI_OK;
        default: cli_help(cmd, stderr); return CLI_USAGE;
        }
    }
    if (cli_no_extra_args(cmd, argc, argv, optind) != CLI_OK)
        return CLI_USAGE;
    /* Refusals are part of the listing; do not log them a second time. */
    if (!fanout_log_enabled(FANOUT_LOG_DEBUG))
        fanout_log_set_level(FANOUT_LOG_ERROR);
    struct fanout_loader *l = fanout_loader_new(fanout_host_default(), plugin_path);
    if (!l) {
        fprintf(stderr, "fanout plugins: cannot set up the loader\n");
        return CLI_USAGE;
    }
    if (s.json)
        fanout_sbuf_puts(&s.out, "[");
    fanout_loader_scan(l, s_scan_cb, &s);
    if (s.json)
        fanout_sbuf_puts(&s.out, "]\n");
    else if (!s.count)
        fanout_sbuf_printf(&s.out, "no plugins found in %s\n",
                           fanout_loader_search_path(l));
    if (!s.json) {
        struct fanout_engine_config cfg;
        char err[256];
        if (fanout_engine_config_from_env(&cfg, err, sizeof err) == 0)
            fanout_sbuf_printf(&s.out,
                               "\nsearch path: %s\nretries: %u attempts, backoff full "
                               "jitter from %u ms up to %u ms; %u targets/batches in "
                               "parallel\n",
                               fanout_loader_search_path(l), cfg.retry_attempts,
                               cfg.retry_base_ms, cfg.retry_cap_ms, cfg.max_parallel);
        const struct fanout_retry_policy *ap = fanout_aws_policy();
        fanout_sbuf_printf(
            &s.out,
            "AWS requests: %u attempts, backoff full jitter from %u ms up to "
            "%u ms, %u ms per attempt\n",
            ap->max_attempts, ap->base_ms, ap->cap_ms, ap->request_timeout_ms);
    }
    fwrite(s.out.bytes ? s.out.bytes : (uint8_t *)"", 1, s.out.len, stdout);
    fanout_sbuf_free(&s.out);
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

int cli_validate(const struct cli_command *cmd, int argc, char **argv)
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
        case 'h': cli_help(cmd, stdout); return CLI_OK;
        default: cli_help(cmd, stderr); return CLI_USAGE;
        }
    }
    if (cli_no_extra_args(cmd, argc, argv, optind) != CLI_OK)
        return CLI_USAGE;
    /* the table flags of the other commands: the DynamoDB store */
    char tname[300], tregion[64], terr[512];
    int t = cli_table(table, table_arn, function, function_arn, tname, sizeof tname,
                      tregion, sizeof tregion, terr, sizeof terr);
    if (t < 0 || (t == 0 && config)) {
        fprintf(stderr, "fanout validate: %s\n",
                t < 0 ? terr : "give --config FILE or a table, not both");
        cli_help(cmd, stderr);
        return CLI_USAGE;
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
    int rc = cli_engine(config, plugin_path, &e);
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
        return CLI_USAGE;
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
    return problems ? CLI_USAGE : 0;
}
