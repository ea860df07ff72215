/* The base chain and the cache.
 *
 * The base chain is the aws command's (botocore's create_credential_
 * resolver), tried in order (s_providers): environment; the profile
 * (AWS_PROFILE or "default"): a role it assumes (role_arn with
 * source_profile, chained through profiles that assume roles themselves,
 * or credential_source Environment / Ec2InstanceMetadata / EcsContainer;
 * external_id, role_session_name, duration_seconds; mfa_serial refused:
 * nothing can prompt), else web identity (AWS_WEB_IDENTITY_TOKEN_FILE /
 * AWS_ROLE_ARN or the profile's keys), IAM Identity Center (legacy sso_*
 * keys or an sso-session section; the token `aws sso login` cached),
 * the credentials file's keys, credential_process, the config file's keys;
 * then container credentials; then the EC2 instance metadata service
 * (IMDSv2, 1 s timeouts). The whole chain's answer is one cache entry, so
 * every step of it (STS calls of a role chain included) runs once per
 * refresh for all callers; a target's role (STS AssumeRole with the base
 * chain) is an entry of its own.
 *
 * Each entry is refreshed before it expires, by one caller while the
 * others wait for its answer (or keep using credentials still good); a
 * fetch that failed with nothing usable is held for a while.
 *
 * Not done: refreshing an expired SSO token with its refresh token (the
 * error asks for `aws sso login`); MFA prompts. */
#include "aws/credentials/provider.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define LOG_SCOPE "credentials"

/* Refresh margin: FANOUT_CREDENTIALS_REFRESH_SECONDS, or a quarter of the
 * lifetime at issue when that is shorter. */
#define DEFAULT_REFRESH_S 300
#define MAX_REFRESH_S     86400
/* After a failed refresh, the old credentials are used while they have
 * more than this left (or a quarter of the margin, for lifetimes under a
 * minute or two: test credentials). */
#define MIN_VALID_MS 5000
/* And the refresh is tried again no sooner than this (or a quarter of what
 * is left), so a failing STS is not asked on every call. */
#define RETRY_AFTER_MS 10000
/* A fetch that failed with nothing usable to fall back on is not tried
 * again before this: its error is the answer meanwhile. So a throttled or
 * failing STS sees one bounded burst of attempts (FANOUT_AWS_MAX_ATTEMPTS)
 * per this period, however many sends, batches, targets or engine retries
 * ask for the same credentials. */
#define FAILURE_HOLD_MS 5000

/* ---- the base chain ---------------------------------------------------- */

/* The aws command's order (botocore's create_credential_resolver). */
static const struct cred_provider *const s_providers[] = {
    &cred_env_provider,
    &cred_profile_provider,
    &cred_container_provider,
    &cred_imds_provider,
};

static int s_chain_fetch(struct fanout_credentials *out, char *err, size_t err_len)
{
    const struct cred_scope scope = {cred_profile_name(), 1};
    for (size_t i = 0; i < sizeof s_providers / sizeof s_providers[0]; i++) {
        int rc = s_providers[i]->fetch(&scope, out, err, err_len);
        if (rc == CRED_FOUND) {
            char hint[16];
            cred_key_hint(out->access_key_id, hint);
            LOG_DEBUG(LOG_SCOPE, "credentials from the %s (%s, key %s)",
                      s_providers[i]->name, out->source, hint);
            return 0;
        }
        if (rc == CRED_ERROR)
            return -1;
    }
    cred_set_err(
        err, err_len,
        "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
        "or configure profile \"%s\" in %s or %s (keys, role_arn, sso, "
        "credential_process), web identity, container credentials, or run on EC2 with "
        "an instance profile",
        cred_profile_name(), cred_file_name(0), cred_file_name(1));
    return -1;
}

/* ---- the cache ---------------------------------------------------------- */

struct cred_entry {
    struct cred_entry *next;
    /* The key; NULL role: the base chain. Immutable once added. */
    char *role_arn;
    char *external_id;
    char *region;
    struct fanout_credentials creds;
    int have;               /* creds hold what the last good fetch gave */
    int64_t fetched_ms;     /* when */
    int64_t margin_ms;      /* refresh when less than this is left */
    int refreshing;         /* one caller is fetching (outside the lock) */
    uint64_t refreshes;     /* fetches finished, good or bad */
    int last_failed;        /* the last fetch failed ... */
    char last_err[ERR_LEN]; /* ... with this */
    int64_t retry_after_ms; /* no new early refresh before this */
    int64_t failed_ms;      /* when the last fetch failed with nothing usable */
};

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_done = PTHREAD_COND_INITIALIZER;
static struct cred_entry *s_entries;

static int s_str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void s_entry_free(struct cred_entry *e)
{
    free(e->role_arn);
    free(e->external_id);
    free(e->region);
    cred_wipe(e, sizeof *e);
    free(e);
}

/* Under s_lock. */
static struct cred_entry *s_entry_get(const char *role_arn, const char *external_id,
                                      const char *region)
{
    for (struct cred_entry *e = s_entries; e; e = e->next)
        if (s_str_eq(e->role_arn, role_arn) && s_str_eq(e->external_id, external_id) &&
            s_str_eq(e->region, region))
            return e;
    struct cred_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->role_arn = role_arn ? strdup(role_arn) : NULL;
    e->external_id = external_id ? strdup(external_id) : NULL;
    e->region = region ? strdup(region) : NULL;
    if ((role_arn && !e->role_arn) || (external_id && !e->external_id) ||
        (region && !e->region)) {
        s_entry_free(e);
        return NULL;
    }
    e->next = s_entries;
    s_entries = e;
    return e;
}

/* Refresh when less than the margin is left; long-term keys never. */
static int s_due(const struct cred_entry *e, int64_t now)
{
    return !e->have || (e->creds.expires_ms && e->creds.expires_ms - now < e->margin_ms);
}

/* Good enough to hand out while a refresh is failing or under way. */
static int s_usable(const struct cred_entry *e, int64_t now)
{
    if (!e->have)
        return 0;
    if (!e->creds.expires_ms)
        return 1;
    int64_t min_valid = e->margin_ms / 4 < MIN_VALID_MS ? e->margin_ms / 4 : MIN_VALID_MS;
    return e->creds.expires_ms - now > min_valid;
}

/* ---- get ---------------------------------------------------------------- */

static int s_fetch(const struct cred_entry *e, struct fanout_credentials *out,
                   int64_t *margin, char *err, size_t err_len)
{
    long refresh_s;
    if (cred_env_int("FANOUT_CREDENTIALS_REFRESH_SECONDS", DEFAULT_REFRESH_S, 0,
                     MAX_REFRESH_S, &refresh_s, err, err_len))
        return -1;
    int64_t now = cred_now_ms();
    int rc = e->role_arn ? cred_assume_role(e->role_arn, e->external_id, e->region, out,
                                            err, err_len)
                         : s_chain_fetch(out, err, err_len);
    if (rc)
        return -1;
    if (out->expires_ms && out->expires_ms <= cred_now_ms()) {
        char when[32];
        cred_format_time(out->expires_ms, when);
        cred_set_err(err, err_len, "credentials from %s%s%s expired at %s", out->source,
                     e->role_arn ? " for " : "", e->role_arn ? e->role_arn : "", when);
        cred_wipe(out, sizeof *out);
        return -1;
    }
    *margin = (int64_t)refresh_s * 1000;
    if (out->expires_ms && (out->expires_ms - now) / 4 < *margin)
        *margin = (out->expires_ms - now) / 4;
    return 0;
}

static int s_get(const char *role_arn, const char *external_id, const char *region,
                 int force, struct fanout_credentials *out, char *err, size_t err_len)
{
    pthread_mutex_lock(&s_lock);
    struct cred_entry *e = s_entry_get(role_arn, external_id, region);
    if (!e) {
        pthread_mutex_unlock(&s_lock);
        cred_set_err(err, err_len, "out of memory");
        return -1;
    }
    int64_t now = cred_now_ms();
    if (!force && !s_due(e, now)) {
        *out = e->creds;
        pthread_mutex_unlock(&s_lock);
        return 0;
    }
    if (e->refreshing) {
        /* Someone is fetching: early, so keep using these; else wait and
         * take what the fetch gave (one fetch for all). */
        if (!force && s_usable(e, now)) {
            *out = e->creds;
            pthread_mutex_unlock(&s_lock);
            return 0;
        }
        uint64_t seen = e->refreshes;
        while (e->refreshing && e->refreshes == seen)
            pthread_cond_wait(&s_done, &s_lock);
        int rc = 0;
        if (!e->last_failed || (!force && s_usable(e, cred_now_ms()))) {
            *out = e->creds;
        } else {
            cred_set_err(err, err_len, "%s", e->last_err);
            rc = -1;
        }
        pthread_mutex_unlock(&s_lock);
        return rc;
    }
    if (e->last_failed && !s_usable(e, now) && now >= e->failed_ms &&
        now - e->failed_ms < FAILURE_HOLD_MS) {
        /* It failed a moment ago, and asking again at once would only
         * multiply the requests: the same answer, until the hold is over
         * (even for `force`: that fetch is as fresh as one can be). */
        cred_set_err(err, err_len,
                     "%s (failed %" PRId64 " ms ago; not asked again for %d s)",
                     e->last_err, now - e->failed_ms, FAILURE_HOLD_MS / 1000);
        pthread_mutex_unlock(&s_lock);
        return -1;
    }
    if (!force && s_usable(e, now) && now < e->retry_after_ms) {
        /* An early refresh failed a moment ago: not again yet. */
        *out = e->creds;
        pthread_mutex_unlock(&s_lock);
        return 0;
    }
    e->refreshing = 1;
    pthread_mutex_unlock(&s_lock);

    /* Fetch outside the lock: other keys are not held up, and callers of
     * this one wait on s_done. The key fields of `e` never change. */
    struct fanout_credentials fresh;
    char ferr[ERR_LEN] = "";
    int64_t margin = 0;
    int frc = s_fetch(e, &fresh, &margin, ferr, sizeof ferr);

    pthread_mutex_lock(&s_lock);
    now = cred_now_ms();
    int rc = 0;
    e->refreshing = 0;
    e->refreshes++;
    if (frc == 0) {
        e->creds = fresh;
        e->have = 1;
        e->fetched_ms = now;
        e->margin_ms = margin;
        e->last_failed = 0;
        e->last_err[0] = 0;
        e->retry_after_ms = 0;
        *out = e->creds;
    } else {
        e->last_failed = 1;
        fanout_strlcpy(e->last_err, ferr, sizeof e->last_err);
        if (!force && s_usable(e, now)) {
            int64_t left = e->creds.expires_ms - now;
            e->retry_after_ms =
                now + (left / 4 < RETRY_AFTER_MS ? left / 4 : RETRY_AFTER_MS);
            LOG_WARN(LOG_SCOPE,
                     "refreshing %s%s credentials failed; using the current ones (%" PRId64
                     " s left): %s",
                     e->role_arn ? "the role's " : "the base",
                     e->role_arn ? e->role_arn : "", left / 1000, ferr);
            *out = e->creds;
        } else {
            e->failed_ms = now;
            cred_set_err(err, err_len, "%s", ferr);
            rc = -1;
        }
    }
    pthread_cond_broadcast(&s_done);
    pthread_mutex_unlock(&s_lock);
    cred_wipe(&fresh, sizeof fresh);
    return rc;
}

int fanout_credentials_get(const char *role_arn, const char *external_id,
                           const char *region, int force, struct fanout_credentials *out,
                           char *err, size_t err_len)
{
    if (!out) {
        cred_set_err(err, err_len, "no output for credentials");
        return -1;
    }
    if (role_arn && !*role_arn)
        role_arn = NULL;
    if (!role_arn)
        external_id = region = NULL; /* the base chain has one entry */
    if (external_id && !*external_id)
        external_id = NULL;
    if (region && !*region)
        region = NULL;
    int rc = s_get(role_arn, external_id, region, force, out, err, err_len);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

void fanout_credentials_reset(void)
{
    pthread_mutex_lock(&s_lock);
    for (;;) {
        int busy = 0;
        for (struct cred_entry *e = s_entries; e; e = e->next)
            busy |= e->refreshing;
        if (!busy)
            break;
        pthread_cond_wait(&s_done, &s_lock);
    }
    while (s_entries) {
        struct cred_entry *e = s_entries;
        s_entries = e->next;
        s_entry_free(e);
    }
    pthread_mutex_unlock(&s_lock);
}

int cred_base_get(int force, struct fanout_credentials *out, char *err, size_t err_len)
{
    return fanout_credentials_get(NULL, NULL, NULL, force, out, err, err_len);
}
