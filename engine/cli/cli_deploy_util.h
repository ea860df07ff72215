/* Internal to the deployment commands' files (cli_deploy.c,
 * cli_deploy_opts.c, cli_destroy.c, cli_function.c, cli_role.c): their
 * names and limits, the small helpers of cli_deploy_util.c, and what one of
 * them defines for the others (the function's read, the role's setup and
 * deletion). What hook shares with them is in cli_deploy.h. */
#ifndef FANOUT_CLI_DEPLOY_UTIL_H
#define FANOUT_CLI_DEPLOY_UTIL_H

#include <jansson.h>
#include <stddef.h>

#include "cli/cli_aws.h"
#include "common/util.h"

#define D_RUNTIME   "provided.al2023"
#define D_TAG       "fanout:function"
#define D_FUNCTIONS "/2015-03-31/functions/"
#define D_ESMS      "/2015-03-31/event-source-mappings/"
#define D_LAYERS    "/2018-10-31/layers/"
/* Lambda's limits: layers per function, a function name. */
#define D_MAX_LAYERS 5
#define D_MAX_NAME   64
/* Pages of one listing before giving up (a service answering the same
 * marker forever). */
#define D_MAX_PAGES 10000
#define D_ARN_MAX   2048

/* The plugin types of plugins/: one layer each with --plugins
 * (NULL-terminated). */
extern const char *const d_plugin_types[];

/* ---- small helpers (cli_deploy_util.c) ------------------------------------------- */

/* The failed answer's error code is `code`. */
int d_is(const struct cli_aws_reply *r, const char *code);
/* The failed answer says there is no such resource. */
int d_not_found(const struct cli_aws_reply *r);
/* "fanout <cmd>: out of memory" printed; CLI_FAILED. */
int d_oom(const char *cmd);
/* The non-empty string o[a] (o[a][b] when b), or NULL. */
const char *d_str(const json_t *o, const char *a, const char *b);
/* One line of what a command did, on standard output. */
void d_line(const char *fmt, ...) FANOUT_FMT(1, 2);
/* A failed call that may only mean "there is no such resource": 1 then,
 * else -1 with the failure printed ("fanout <cmd>: <what>: ..."). `r` is
 * released. */
int d_gone_or_fail(const char *cmd, struct cli_aws_reply *r, const char *action,
                   const char *resource, const char *fmt, ...) FANOUT_FMT(5, 6);
/* prefix + encoded name + suffix into out. 0, or -1 when it does not fit. */
int d_path(char *out, size_t len, const char *prefix, const char *name, const char *suffix);
/* A Lambda request on prefix + name + suffix (body stolen). */
int d_lambda(const char *method, const char *prefix, const char *name, const char *suffix,
             const char *query, json_t *body, struct cli_aws_reply *r);
/* An IAM Query call (NULL-terminated name, value pairs). */
int d_iam(const char *action, const char *const *params, struct cli_aws_reply *r);
/* "name=value&name2=value2" with the values encoded (NULL-terminated
 * pairs; a NULL or empty value leaves its pair out). malloc'd, or NULL. */
char *d_query(const char *const *pairs);
/* One item of a listing: 0 to go on, -1 to stop (the failure printed). */
typedef int(d_list_item_fn)(void *ctx, json_t *item);
/* A Lambda listing, page by page: GET `path` with the query `pairs` (as
 * d_query takes them, or NULL) and the marker, under the query member
 * `marker`, that the answer's member `next` gave; each item of the
 * answer's array `list` handed to `each`. An answer without its list, a
 * marker that repeats, more than D_MAX_PAGES pages: failures, not the end
 * of the listing. */
struct d_listing {
    const char *cmd, *what;        /* "fanout <cmd>: <what>: ..." */
    const char *action, *resource; /* a failed call's permission */
    const char *path;              /* percent-encoded */
    const char *const *pairs;
    const char *marker, *next, *list; /* "Marker", "NextMarker", "Layers" */
    int missing_ok;                   /* a not-found answer: the listed resource is gone */
    d_list_item_fn *each;
    void *ctx;
};
/* 0 listed, 1 gone (missing_ok), -1 failed (printed). */
int d_list(const struct d_listing *l);
/* A wait's read (0 read, 1 gone, -1 failed and printed): 0 to go on, -1
 * to stop. */
int d_probe_read(const char *cmd, const char *kind, const char *name, int rc);

/* Who calls: the account and partition (STS), the region. */
struct d_who {
    char account[32], partition[32];
    const char *region;
};
/* CLI_OK, or CLI_FAILED printed. */
int d_identity(const char *cmd, struct d_who *w);

/* ---- the function (cli_function.c) ----------------------------------------------- */

/* The function's configuration: GetFunction's Configuration (`whole`), or
 * GetFunctionConfiguration. 0 with *cfg, 1 no such function, -1 failed
 * (printed). */
int d_function_read(const char *cmd, const char *function, int whole, json_t **cfg);

/* ---- the execution role (cli_role.c) --------------------------------------------- */

/* deploy's role: the one --exec-role-arn gives (left as it is), or
 * `exec_role` (default FUNCTIONRole) read or created with the tag
 * fanout:function=FUNCTION, its policy "fanout" put (from the function's
 * mappings and `table`), the managed VPC policy attached when `in_vpc`,
 * detached otherwise. The role's ARN into role_arn. CLI_ status
 * (printed). */
struct d_role_in {
    const char *cmd;
    const struct d_who *who;
    const char *function, *exec_role, *exec_role_arn;
    const char *table, *table_arn;
    int in_vpc;
};
int d_role_setup(const struct d_role_in *in, char *role_arn, size_t len);

/* destroy's role: deleted (its policies first) when deploy created it for
 * `function` (its tag says so); kept otherwise. `role_arn` (or NULL): the
 * function's role, when it had one. CLI_ status (printed). */
int d_role_destroy(const char *cmd, const char *function, const char *exec_role,
                   const char *exec_role_arn, const char *role_arn);

#endif
