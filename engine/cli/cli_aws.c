/* The management commands' AWS calls: one request through the AWS layer
 * (fanout_aws_call: endpoint, credentials, SigV4, retries), the answer
 * kept whole and parsed, a denied call explained with the permission it
 * lacked; the common flags and the waits of the deployment commands. */
#include "cli/cli_aws.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fanout/xml.h>

#include "aws/client.h"
#include "aws/endpoint.h"
#include "cli/cli_cmd.h"
#include "common/log.h"
#include "common/util.h"

/* The longest wait a command takes for a function or a mapping, by
 * default, and the polls' first and longest intervals. */
#define S_WAIT_DEFAULT_S 300
#define S_WAIT_FIRST_MS  500
#define S_WAIT_MAX_MS    5000

static char s_region[64];
static char s_account[32], s_partition[32];

void cli_aws_reply_free(struct cli_aws_reply *r)
{
    if (!r)
        return;
    json_decref(r->json);
    free(r->body);
    r->json = NULL;
    r->body = NULL;
    r->len = 0;
}

static int s_fail_reply(struct cli_aws_reply *r, const char *code, const char *message)
{
    fanout_strlcpy(r->code, code, sizeof r->code);
    fanout_strlcpy(r->message, message, sizeof r->message);
    return -1;
}

/* One request as given: 0 on 2xx with r->body (r->json not parsed), else -1
 * with r->code / r->message. */
static int s_send(const struct fanout_aws_request *req, struct cli_aws_reply *r)
{
    memset(r, 0, sizeof *r);
    struct fanout_aws_response resp = {.struct_size = sizeof resp};
    const struct fanout_aws_request *reqs[] = {req};
    struct fanout_aws_response *resps[] = {&resp};
    fanout_aws_call(reqs, resps, 1);
    r->status = resp.status;
    int rc = 0;
    if (resp.result != FANOUT_AWS_OK) {
        fanout_strlcpy(r->code, resp.error_code[0] ? resp.error_code : "RequestFailed",
                       sizeof r->code);
        if (resp.error_message[0])
            fanout_strlcpy(r->message, resp.error_message, sizeof r->message);
        else if (resp.status)
            snprintf(r->message, sizeof r->message, "HTTP status %ld", resp.status);
        rc = -1;
    } else if (!(r->body = malloc(resp.body_len + 1))) {
        rc = s_fail_reply(r, "OutOfMemory", "out of memory reading the answer");
    } else {
        if (resp.body_len)
            memcpy(r->body, resp.body, resp.body_len);
        r->body[resp.body_len] = 0;
        r->len = resp.body_len;
    }
    fanout_aws_response_clean_up(&resp);
    return rc;
}

/* One request in the commands' region (a global service's signing region)
 * or where `at` says; `json_answer`: a 2xx body must be a JSON object (or
 * empty). */
static int s_call(const struct cli_aws_at *at, const char *service, const char *method,
                  const char *path, const char *query,
                  const struct fanout_aws_header *headers, size_t header_count,
                  const char *body, int protocol, int json_answer, struct cli_aws_reply *r)
{
    const char *region = at && at->region ? at->region
                         : s_region[0]    ? fanout_aws_signing_region(service, s_region)
                                          : NULL;
    const struct fanout_aws_request req = {
        .struct_size = sizeof req,
        .service = service,
        .region = region,
        .endpoint = at ? at->endpoint : NULL,
        .method = method,
        .path = path,
        .query = query,
        .headers = headers,
        .header_count = header_count,
        .body = (const uint8_t *)body,
        .body_len = body ? strlen(body) : 0,
        .protocol = protocol,
    };
    if (s_send(&req, r) != 0)
        return -1;
    if (json_answer && r->len) {
        json_error_t je;
        r->json = json_loadb(r->body, r->len, 0, &je);
        if (!json_is_object(r->json)) {
            json_decref(r->json);
            r->json = NULL;
            fanout_strlcpy(r->code, "InvalidResponse", sizeof r->code);
            snprintf(r->message, sizeof r->message,
                     "the %s answer is not a JSON object (%s)", service, je.text);
            return -1;
        }
    }
    return 0;
}

/* The body as compact JSON (malloc'd), `body` released. */
static char *s_dump(json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

int cli_aws_json(const char *service, const char *json_version, const char *target,
                 json_t *body, struct cli_aws_reply *r)
{
    return cli_aws_json_at(NULL, service, json_version, target, body, r);
}

int cli_aws_json_at(const struct cli_aws_at *at, const char *service,
                    const char *json_version, const char *target, json_t *body,
                    struct cli_aws_reply *r)
{
    memset(r, 0, sizeof *r);
    char *text = body ? s_dump(body) : strdup("{}");
    if (!text)
        return s_fail_reply(r, "OutOfMemory", "out of memory writing the request");
    char content_type[64];
    snprintf(content_type, sizeof content_type, "application/x-amz-json-%s", json_version);
    const struct fanout_aws_header h[] = {{"Content-Type", content_type},
                                          {"X-Amz-Target", target}};
    int rc = s_call(at, service, "POST", "/", NULL, h, 2, text, FANOUT_AWS_JSON, 1, r);
    free(text);
    return rc;
}

int cli_aws_rest(const char *service, const char *method, const char *path,
                 const char *query, json_t *body, struct cli_aws_reply *r)
{
    return cli_aws_rest_at(NULL, service, method, path, query, body, r);
}

int cli_aws_rest_at(const struct cli_aws_at *at, const char *service, const char *method,
                    const char *path, const char *query, json_t *body,
                    struct cli_aws_reply *r)
{
    memset(r, 0, sizeof *r);
    char *text = NULL;
    if (body && !(text = s_dump(body)))
        return s_fail_reply(r, "OutOfMemory", "out of memory writing the request");
    const struct fanout_aws_header h[] = {{"Content-Type", "application/json"}};
    int rc = s_call(at, service, method, path, query, h, text ? 1 : 0, text,
                    FANOUT_AWS_JSON, 1, r);
    free(text);
    return rc;
}

int cli_aws_encode(struct fanout_sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rc |= fanout_sbuf_putc(b, *p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc |= fanout_sbuf_put(b, e, 3);
        }
    }
    return rc ? -1 : 0;
}

int cli_aws_query(const char *service, const char *action, const char *version,
                  const char *const *params, struct cli_aws_reply *r)
{
    return cli_aws_query_at(NULL, service, action, version, params, r);
}

int cli_aws_query_at(const struct cli_aws_at *at, const char *service, const char *action,
                     const char *version, const char *const *params,
                     struct cli_aws_reply *r)
{
    memset(r, 0, sizeof *r);
    struct fanout_sbuf form = {0};
    int rc = fanout_sbuf_printf(&form, "Action=%s&Version=%s", action, version);
    for (const char *const *p = params; p && p[0] && p[1] && rc == 0; p += 2) {
        rc |= fanout_sbuf_putc(&form, '&');
        rc |= cli_aws_encode(&form, p[0]);
        rc |= fanout_sbuf_putc(&form, '=');
        rc |= cli_aws_encode(&form, p[1]);
    }
    if (rc != 0 || !form.p) {
        fanout_sbuf_free(&form);
        return s_fail_reply(r, "OutOfMemory", "out of memory writing the request");
    }
    const struct fanout_aws_header h[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    rc = s_call(at, service, "POST", "/", NULL, h, 1, form.p, FANOUT_AWS_QUERY, 0, r);
    fanout_sbuf_free(&form);
    return rc;
}

char *cli_aws_xml_text(const char *body, size_t len, const char *name)
{
    struct fanout_xml_elem el;
    if (!body || !fanout_xml_find(body, len, name, 0, &el) || !el.closed)
        return NULL;
    char *out = malloc(el.content_len + 1);
    if (out)
        fanout_xml_text(el.content, el.content_len, FANOUT_XML_TRIM, out,
                        el.content_len + 1);
    return out;
}

/* ---- denied calls ----------------------------------------------------------- */

int cli_aws_is_denied(const char *code)
{
    return !strcmp(code, "AccessDenied") || !strcmp(code, "AccessDeniedException") ||
           !strcmp(code, "UnauthorizedOperation");
}

/* The word after `marker` in `s` (up to a space, or a '.' or ',' ending the
 * sentence) into out; 1 when there is one. */
static int s_word_after(const char *s, const char *marker, char *out, size_t out_len)
{
    const char *p = strstr(s, marker);
    if (!p)
        return 0;
    p += strlen(marker);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, " \t\r\n");
    while (n && (p[n - 1] == '.' || p[n - 1] == ','))
        n--;
    if (n == 0 || n >= out_len)
        return 0;
    memcpy(out, p, n);
    out[n] = 0;
    return 1;
}

int cli_aws_parse_denied(const char *message, char *action, size_t action_len,
                         char *resource, size_t resource_len)
{
    if (!message || action_len == 0 || resource_len == 0)
        return 0;
    resource[0] = 0;
    if (!s_word_after(message, "is not authorized to perform:", action, action_len)) {
        action[0] = 0;
        return 0;
    }
    /* "perform: iam:CreateRole on resource: ARN because ..." */
    if (!s_word_after(message, " on resource:", resource, resource_len))
        resource[0] = 0;
    return 1;
}

int cli_aws_fail(const char *cmd, const char *what, const char *action,
                 const char *resource, const struct cli_aws_reply *r)
{
    const char *code = r->code[0] ? r->code : "RequestFailed";
    if (cli_aws_is_denied(code)) {
        char a[256], res[1024];
        if (!cli_aws_parse_denied(r->message, a, sizeof a, res, sizeof res)) {
            fanout_strlcpy(a, action ? action : "?", sizeof a);
            res[0] = 0;
        }
        if (!res[0])
            fanout_strlcpy(res, resource ? resource : "*", sizeof res);
        fprintf(stderr, "fanout %s: %s: access denied: missing permission %s on %s\n", cmd,
                what, a, res);
    }
    fprintf(stderr, "fanout %s: %s: %s%s%s\n", cmd, what, code, r->message[0] ? ": " : "",
            r->message);
    return CLI_FAILED;
}

/* ---- identity and region ------------------------------------------------------ */

const char *cli_aws_region(void)
{
    return s_region[0] ? s_region : NULL;
}

int cli_aws_identity(char *account, size_t account_len, char *partition,
                     size_t partition_len, char *err, size_t err_len)
{
    if (!s_account[0]) {
        struct cli_aws_reply r;
        if (cli_aws_query("sts", "GetCallerIdentity", "2011-06-15", NULL, &r) != 0) {
            snprintf(err, err_len, "STS GetCallerIdentity: %s%s%s", r.code,
                     r.message[0] ? ": " : "", r.message);
            cli_aws_reply_free(&r);
            return -1;
        }
        char *acct = cli_aws_xml_text(r.body, r.len, "Account");
        char *arn = cli_aws_xml_text(r.body, r.len, "Arn");
        cli_aws_reply_free(&r);
        /* arn:<partition>:sts::<account>:assumed-role/... */
        const char *p = arn && !strncmp(arn, "arn:", 4) ? arn + 4 : NULL;
        size_t pl = p ? strcspn(p, ":") : 0;
        int ok = acct && *acct && strlen(acct) < sizeof s_account && pl > 0 &&
                 pl < sizeof s_partition;
        if (ok) {
            fanout_strlcpy(s_account, acct, sizeof s_account);
            memcpy(s_partition, p, pl);
            s_partition[pl] = 0;
        } else {
            snprintf(err, err_len,
                     "STS GetCallerIdentity: the answer has no Account and Arn "
                     "(arn:PARTITION:...)");
        }
        free(acct);
        free(arn);
        if (!ok)
            return -1;
    }
    if (strlen(s_account) >= account_len || strlen(s_partition) >= partition_len) {
        snprintf(err, err_len, "no room for the account and partition");
        return -1;
    }
    fanout_strlcpy(account, s_account, account_len);
    fanout_strlcpy(partition, s_partition, partition_len);
    return 0;
}

/* ---- common flags ---------------------------------------------------------------- */

int cli_aws_value_flag(int argc, char **argv, int *i, const char *name, const char **value,
                       char *err, size_t err_len)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0)
        return 0;
    if (a[2 + n] == '=') {
        *value = a + 3 + n;
        return 1;
    }
    if (a[2 + n] != 0)
        return 0;
    if (*i + 1 >= argc) {
        snprintf(err, err_len, "--%s needs a value", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int cli_aws_common_flag(struct cli_aws_flags *f, int argc, char **argv, int *i, char *err,
                        size_t err_len)
{
    static const struct {
        const char *name;
        size_t offset;
    } values[] = {
        {"region", offsetof(struct cli_aws_flags, region)},
        {"profile", offsetof(struct cli_aws_flags, profile)},
        {"endpoint-url", offsetof(struct cli_aws_flags, endpoint_url)},
    };
    for (size_t k = 0; k < sizeof values / sizeof *values; k++) {
        const char **slot = (const char **)((char *)f + values[k].offset);
        int rc = cli_aws_value_flag(argc, argv, i, values[k].name, slot, err, err_len);
        if (rc != 0)
            return rc;
    }
    if (!strcmp(argv[*i], "--no-verify-ssl")) {
        f->no_verify_ssl = 1;
        return 1;
    }
    if (!strcmp(argv[*i], "--debug")) {
        f->debug = 1;
        return 1;
    }
    return 0;
}

int cli_aws_setup(const char *cmd, const struct cli_aws_flags *f, char *err, size_t err_len)
{
    if (f->debug) {
        setenv("FANOUT_LOG_LEVEL", "debug", 1);
        fanout_log_init();
    }
    if (f->region && !*f->region) {
        snprintf(err, err_len, "--region must not be empty");
        return -1;
    }
    if (f->profile) {
        if (!*f->profile) {
            snprintf(err, err_len, "--profile must not be empty");
            return -1;
        }
        setenv("AWS_PROFILE", f->profile, 1);
    }
    if (f->endpoint_url) {
        if (strncmp(f->endpoint_url, "http://", 7) != 0 &&
            strncmp(f->endpoint_url, "https://", 8) != 0) {
            snprintf(err, err_len,
                     "--endpoint-url expects http(s)://host[:port], got \"%s\"",
                     f->endpoint_url);
            return -1;
        }
        /* every service the deployment commands call; the services' own
         * variables, so that the flag wins over the environment's */
        static const char *const vars[] = {
            "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL_STS",
            "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_KINESIS"};
        for (size_t k = 0; k < sizeof vars / sizeof *vars; k++)
            setenv(vars[k], f->endpoint_url, 1);
        unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    }
    if (fanout_aws_region(f->region, s_region, sizeof s_region, err, err_len) != 0) {
        s_region[0] = 0;
        return -1;
    }
    if (f->no_verify_ssl) {
        fprintf(
            stderr,
            "fanout %s: warning: --no-verify-ssl: TLS certificates are not verified for "
            "this command's AWS requests; anyone on the network path can read and "
            "change them\n",
            cmd);
        fanout_aws_set_tls_no_verify(1);
    }
    return 0;
}

/* ---- waits ---------------------------------------------------------------------- */

static long s_wait_limit_s(const char *cmd)
{
    const char *v = getenv("FANOUT_DEPLOY_WAIT_SECONDS");
    if (!v || !*v)
        return S_WAIT_DEFAULT_S;
    char *end;
    long s = strtol(v, &end, 10);
    if (*end || s < 1 || s > 86400) {
        fprintf(stderr,
                "fanout %s: warning: FANOUT_DEPLOY_WAIT_SECONDS=\"%s\" is not 1 to 86400 "
                "seconds; waiting up to %d s\n",
                cmd, v, S_WAIT_DEFAULT_S);
        return S_WAIT_DEFAULT_S;
    }
    return s;
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_aws_wait(const char *cmd, const char *what,
                 int (*probe)(void *ctx, char *progress, size_t progress_len), void *ctx)
{
    return cli_aws_wait_up_to(cmd, what, 0, probe, ctx);
}

int cli_aws_wait_up_to(const char *cmd, const char *what, long limit_s,
                       int (*probe)(void *ctx, char *progress, size_t progress_len),
                       void *ctx)
{
    long most = s_wait_limit_s(cmd);
    if (limit_s <= 0 || limit_s > most)
        limit_s = most;
    int64_t end = s_now_ms() + (int64_t)limit_s * 1000;
    int64_t delay = S_WAIT_FIRST_MS;
    char progress[512];
    for (;;) {
        progress[0] = 0;
        int rc = probe(ctx, progress, sizeof progress);
        if (rc > 0)
            return 0;
        if (rc < 0)
            return -1;
        int64_t left = end - s_now_ms();
        if (left <= 0) {
            fprintf(stderr,
                    "fanout %s: %s: still %s after %ld s; run the command again to go on "
                    "(FANOUT_DEPLOY_WAIT_SECONDS sets the longest wait)\n",
                    cmd, what, progress[0] ? progress : "not ready", limit_s);
            return -1;
        }
        fprintf(stderr, "fanout %s: waiting for %s: %s...\n", cmd, what,
                progress[0] ? progress : "not ready");
        int64_t d = delay < left ? delay : left;
        struct timespec ts = {(time_t)(d / 1000), (long)(d % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        delay = delay * 2 > S_WAIT_MAX_MS ? S_WAIT_MAX_MS : delay * 2;
    }
}
