/* The deployment commands' small helpers (declared in cli_deploy_util.h):
 * errors and answers, output lines, request paths and queries, listings'
 * markers, who calls. */
#include "cli/cli_deploy_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/helpers.h>

#include "cli/cli_cmd.h"

#define D_IAM_VERSION "2010-05-08"

const char *const d_plugin_types[] = {"es",      "file",   "firehose",  "iot",
                                      "kinesis", "lambda", "memcached", "redis",
                                      "sns",     "sqs",    NULL};

int d_is(const struct cli_aws_reply *r, const char *code)
{
    return strcmp(r->code, code) == 0;
}

int d_not_found(const struct cli_aws_reply *r)
{
    return d_is(r, "ResourceNotFoundException") || d_is(r, "NoSuchEntity") ||
           r->status == 404;
}

int d_oom(const char *cmd)
{
    fprintf(stderr, "fanout %s: out of memory\n", cmd);
    return CLI_FAILED;
}

const char *d_str(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    const char *s = json_string_value(v);
    return s && *s ? s : NULL;
}

void d_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

int d_gone_or_fail(const char *cmd, struct cli_aws_reply *r, const char *action,
                   const char *resource, const char *fmt, ...)
{
    int gone = d_not_found(r);
    if (!gone) {
        char what[1200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        cli_aws_fail(cmd, what, action, resource, r);
    }
    cli_aws_reply_free(r);
    return gone ? 1 : -1;
}

/* prefix + encoded name + suffix into out. 0, or -1 when it does not fit. */
int d_path(char *out, size_t len, const char *prefix, const char *name, const char *suffix)
{
    struct fanout_sbuf b = {0};
    int rc = fanout_sbuf_puts(&b, prefix) | cli_aws_encode(&b, name) |
             fanout_sbuf_puts(&b, suffix);
    int ok = rc == 0 && b.p && b.len < len;
    if (ok)
        memcpy(out, b.p, b.len + 1);
    fanout_sbuf_free(&b);
    return ok ? 0 : -1;
}

/* A Lambda request on prefix + name + suffix (body stolen). */
int d_lambda(const char *method, const char *prefix, const char *name, const char *suffix,
             const char *query, json_t *body, struct cli_aws_reply *r)
{
    char path[1024];
    if (d_path(path, sizeof path, prefix, name, suffix) != 0) {
        json_decref(body);
        memset(r, 0, sizeof *r);
        fanout_strlcpy(r->code, "InvalidParameter", sizeof r->code);
        snprintf(r->message, sizeof r->message, "the name is too long for a request path");
        return -1;
    }
    return cli_aws_rest("lambda", method, path, query, body, r);
}

int d_iam(const char *action, const char *const *params, struct cli_aws_reply *r)
{
    return cli_aws_query("iam", action, D_IAM_VERSION, params, r);
}

/* "name=value&name2=value2" with the values encoded (NULL-terminated
 * pairs; a NULL or empty value leaves its pair out). malloc'd, or NULL. */
char *d_query(const char *const *pairs)
{
    struct fanout_sbuf q = {0};
    int rc = 0;
    for (; pairs[0]; pairs += 2) {
        if (!pairs[1] || !*pairs[1])
            continue;
        if (q.len)
            rc |= fanout_sbuf_putc(&q, '&');
        rc |= fanout_sbuf_printf(&q, "%s=", pairs[0]) | cli_aws_encode(&q, pairs[1]);
    }
    if (rc == 0 && !q.p)
        rc = fanout_sbuf_puts(&q, "");
    if (rc != 0) {
        fanout_sbuf_free(&q);
        return NULL;
    }
    return q.p;
}

/* The next page's marker of a listing into `marker`: 1 there is one, 0
 * the last page, -1 a marker that repeats or does not fit (printed). */
static int d_next(const char *cmd, const char *what, const char *next, char *marker,
                  size_t len)
{
    if (!next || !*next)
        return 0;
    if (!strcmp(next, marker) || strlen(next) >= len) {
        fprintf(stderr, "fanout %s: %s: the listing's NextMarker %s; stopped\n", cmd, what,
                strlen(next) >= len ? "is too long" : "repeats");
        return -1;
    }
    fanout_strlcpy(marker, next, len);
    return 1;
}

/* `base` (d_query's) and the marker's pair, when there is a marker:
 * malloc'd, or NULL. */
static char *d_page_query(const char *base, const char *name, const char *marker)
{
    struct fanout_sbuf q = {0};
    int rc = fanout_sbuf_puts(&q, base);
    if (marker[0])
        rc |= fanout_sbuf_printf(&q, "%s%s=", base[0] ? "&" : "", name) |
              cli_aws_encode(&q, marker);
    if (rc != 0) {
        fanout_sbuf_free(&q);
        return NULL;
    }
    return q.p;
}

int d_list(const struct d_listing *l)
{
    char marker[1024] = "";
    const char *none[] = {NULL};
    char *base = d_query(l->pairs ? l->pairs : none);
    if (!base)
        return d_oom(l->cmd), -1;
    for (int page = 0; page < D_MAX_PAGES; page++) {
        char *q = d_page_query(base, l->marker, marker);
        if (!q) {
            free(base);
            return d_oom(l->cmd), -1;
        }
        struct cli_aws_reply r;
        int failed = cli_aws_rest("lambda", "GET", l->path, q[0] ? q : NULL, NULL, &r);
        free(q);
        if (failed) {
            free(base);
            if (l->missing_ok)
                return d_gone_or_fail(l->cmd, &r, l->action, l->resource, "%s", l->what);
            cli_aws_fail(l->cmd, l->what, l->action, l->resource, &r);
            cli_aws_reply_free(&r);
            return -1;
        }
        json_t *list = json_object_get(r.json, l->list);
        if (!json_is_array(list)) {
            /* not "none": an answer without the list proves nothing */
            fprintf(stderr, "fanout %s: %s: Lambda's answer has no %s list; stopped\n",
                    l->cmd, l->what, l->list);
            cli_aws_reply_free(&r);
            free(base);
            return -1;
        }
        size_t i;
        json_t *item;
        int next = 0;
        json_array_foreach (list, i, item) {
            if (l->each(l->ctx, item) != 0) {
                next = -1;
                break;
            }
        }
        if (next == 0)
            next = d_next(l->cmd, l->what, d_str(r.json, l->next, NULL), marker,
                          sizeof marker);
        cli_aws_reply_free(&r);
        if (next <= 0) {
            free(base);
            return next;
        }
    }
    free(base);
    fprintf(stderr, "fanout %s: %s: more than %d pages; stopped\n", l->cmd, l->what,
            D_MAX_PAGES);
    return -1;
}

int d_identity(const char *cmd, struct d_who *w)
{
    char err[768];
    w->region = cli_aws_region();
    if (cli_aws_identity(w->account, sizeof w->account, w->partition, sizeof w->partition,
                         err, sizeof err) != 0) {
        fprintf(stderr, "fanout %s: who am I: %s\n", cmd, err);
        return CLI_FAILED;
    }
    return CLI_OK;
}

int d_probe_read(const char *cmd, const char *kind, const char *name, int rc)
{
    if (rc == 1)
        fprintf(stderr, "fanout %s: %s %s: gone while waiting for it\n", cmd, kind, name);
    return rc == 0 ? 0 : -1;
}
