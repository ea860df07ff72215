/* The profile provider (AWS_PROFILE or "default"): a role it assumes
 * (source_profile chains, credential_source), else its own providers in
 * botocore's order: web identity, SSO, the credentials file's keys,
 * credential_process, the config file's keys. */
#include "aws/credentials/provider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/endpoint.h"
#include "common/log.h"

#define LOG_SCOPE "credentials"

#define MAX_CHAIN 16

struct chain_ctx {
    const char *visited[MAX_CHAIN];
    size_t n;
};

/* The keys of `profile` in the credentials file (1) or the config file (0). */
static int s_profile_keys(int credentials_file, const char *profile,
                          struct fanout_credentials *out, char *err, size_t err_len)
{
    char *id = fanout_aws_profile_value(credentials_file, profile, "aws_access_key_id");
    char *secret =
        fanout_aws_profile_value(credentials_file, profile, "aws_secret_access_key");
    char *token = fanout_aws_profile_value(credentials_file, profile, "aws_session_token");
    int rc = CRED_NOT_FOUND;
    if (id && secret && *id && *secret) {
        rc = cred_fill(out, "profile", id, secret, token, err, err_len) ? CRED_ERROR
                                                                        : CRED_FOUND;
    } else if ((id && *id) || (secret && *secret)) {
        cred_set_err(err, err_len, "profile \"%s\" in %s has %s but no %s", profile,
                     cred_file_name(credentials_file),
                     id && *id ? "aws_access_key_id" : "aws_secret_access_key",
                     id && *id ? "aws_secret_access_key" : "aws_access_key_id");
        rc = CRED_ERROR;
    }
    cred_free_secret(id);
    cred_free_secret(secret);
    cred_free_secret(token);
    return rc;
}

static int s_credentials_file_fetch(const struct cred_scope *scope,
                                    struct fanout_credentials *out, char *err,
                                    size_t err_len)
{
    return s_profile_keys(1, scope->profile, out, err, err_len);
}

static int s_config_file_fetch(const struct cred_scope *scope,
                               struct fanout_credentials *out, char *err, size_t err_len)
{
    return s_profile_keys(0, scope->profile, out, err, err_len);
}

static const struct cred_provider s_credentials_file = {"credentials file",
                                                        s_credentials_file_fetch};
static const struct cred_provider s_config_file = {"config file", s_config_file_fetch};

/* botocore's ProfileProviderBuilder: the providers that read one profile,
 * in its order. */
static const struct cred_provider *const s_profile_providers_list[] = {
    &cred_web_identity_provider, &cred_sso_provider, &s_credentials_file,
    &cred_process_provider,      &s_config_file,
};

/* ---- the profile chain ---- */

static int s_profile_providers(const char *profile, int use_env,
                               struct fanout_credentials *out, char *err, size_t err_len)
{
    const struct cred_scope scope = {profile, use_env};
    int rc = CRED_NOT_FOUND;
    for (size_t i = 0; rc == CRED_NOT_FOUND && i < sizeof s_profile_providers_list /
                                                       sizeof *s_profile_providers_list;
         i++)
        rc = s_profile_providers_list[i]->fetch(&scope, out, err, err_len);
    return rc;
}

static void s_visited_text(const struct chain_ctx *ctx, char *out, size_t len)
{
    out[0] = 0;
    for (size_t i = 0; i < ctx->n; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%.64s", i ? " -> " : "",
                 ctx->visited[i]);
}

/* A profile with role_arn (and no web_identity_token_file): its source
 * credentials (credential_source, or source_profile: keys, its own
 * providers, or a role it assumes in turn), then STS AssumeRole. */
static int s_role_profile(const char *profile, struct chain_ctx *ctx,
                          struct fanout_credentials *out, char *err, size_t err_len)
{
    char *role = cred_pv(profile, "role_arn");
    char *mfa = cred_pv(profile, "mfa_serial");
    char *sp = cred_pv(profile, "source_profile");
    char *cs = cred_pv(profile, "credential_source");
    char *ext = cred_pv(profile, "external_id");
    char *session = cred_pv(profile, "role_session_name");
    char *dur = cred_pv(profile, "duration_seconds");
    struct fanout_credentials base;
    memset(&base, 0, sizeof base);
    int rc = CRED_ERROR;
    if (mfa) {
        cred_set_err(
            err, err_len,
            "profile \"%s\" assumes %.200s with mfa_serial %.200s: fanout cannot ask "
            "for an MFA code; use a profile without mfa_serial (or export the "
            "credentials of `aws sts assume-role ... --serial-number --token-code` "
            "in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)",
            profile, role, mfa);
        goto done;
    }
    if (sp && cs) {
        cred_set_err(
            err, err_len,
            "The profile \"%s\" contains both source_profile and credential_source.",
            profile);
        goto done;
    }
    if (!sp && !cs) {
        cred_set_err(err, err_len,
                     "profile \"%s\" has role_arn %.200s but neither source_profile nor "
                     "credential_source",
                     profile, role);
        goto done;
    }
    int src;
    if (cs) {
        /* botocore's CanonicalNameCredentialSourcer */
        static const struct {
            const char *name;
            const struct cred_provider *provider;
        } s_sources[] = {{"Environment", &cred_env_provider},
                         {"Ec2InstanceMetadata", &cred_imds_provider},
                         {"EcsContainer", &cred_container_provider}};
        const struct cred_provider *p = NULL;
        for (size_t i = 0; i < sizeof s_sources / sizeof *s_sources; i++)
            if (strcmp(cs, s_sources[i].name) == 0)
                p = s_sources[i].provider;
        const struct cred_scope scope = {profile, 0};
        if (p)
            src = p->fetch(&scope, &base, err, err_len);
        else {
            cred_set_err(
                err, err_len,
                "The credential source \"%.64s\" referenced in profile \"%s\" is not "
                "valid (Environment, Ec2InstanceMetadata or EcsContainer)",
                cs, profile);
            goto done;
        }
        if (src == CRED_NOT_FOUND)
            cred_set_err(
                err, err_len,
                "No credentials found in credential_source %s referenced in profile "
                "\"%s\"",
                cs, profile);
    } else {
        int seen = 0;
        for (size_t i = 0; i < ctx->n; i++)
            seen |= strcmp(ctx->visited[i], sp) == 0;
        if (seen && (strcmp(sp, profile) != 0 || !cred_has_static(sp))) {
            char path[600];
            s_visited_text(ctx, path, sizeof path);
            cred_set_err(
                err, err_len,
                "Infinite loop in credential configuration detected. Attempting to "
                "load from profile %.64s which has already been visited. Visited "
                "profiles: %s",
                sp, path);
            goto done;
        }
        if (ctx->n >= MAX_CHAIN) {
            cred_set_err(err, err_len, "profile \"%s\": more than %d roles chained",
                         profile, MAX_CHAIN);
            goto done;
        }
        ctx->visited[ctx->n++] = sp;
        if (cred_has_static(sp) || !cred_has_role(sp))
            src = s_profile_providers(sp, 0, &base, err, err_len);
        else
            src = s_role_profile(sp, ctx, &base, err, err_len);
        if (src == CRED_NOT_FOUND)
            cred_set_err(err, err_len,
                         "The source profile \"%.64s\" (of profile \"%s\") must have "
                         "credentials.",
                         sp, profile);
    }
    if (src != CRED_FOUND)
        goto done;
    long duration = 0;
    if (dur) {
        char *end;
        errno = 0;
        long d = strtol(dur, &end, 10);
        if (errno || end == dur || *end || d <= 0 || d > MAX_DURATION_S * 10)
            LOG_WARN(LOG_SCOPE,
                     "profile \"%s\": duration_seconds \"%.32s\" is not a number: ignored "
                     "(as the aws command does)",
                     profile, dur);
        else
            duration = d;
    }
    struct cred_sts_call c = {
        .role_arn = role,
        .external_id = ext,
        .session_name = session && *session ? session : NULL,
        .duration_s = duration,
        .region_fallback = 1,
        .base = &base,
    };
    rc = cred_sts_call(&c, out, err, err_len) ? CRED_ERROR : CRED_FOUND;
    if (rc == CRED_FOUND) {
        char hint[16];
        cred_key_hint(base.access_key_id, hint);
        LOG_DEBUG(LOG_SCOPE, "profile \"%s\": assumed %s with the %s credentials (key %s)",
                  profile, role, base.source, hint);
    }
done:
    cred_wipe(&base, sizeof base);
    free(role);
    free(mfa);
    free(sp);
    free(cs);
    cred_free_secret(ext);
    free(session);
    free(dur);
    return rc;
}

static int s_fetch(const struct cred_scope *scope, struct fanout_credentials *out,
                   char *err, size_t err_len)
{
    (void)scope; /* the chain's profile: AWS_PROFILE */
    const char *profile = cred_profile_name();
    if (cred_has_role(profile)) {
        struct chain_ctx ctx = {{profile}, 1};
        return s_role_profile(profile, &ctx, out, err, err_len);
    }
    return s_profile_providers(profile, 1, out, err, err_len);
}

const struct cred_provider cred_profile_provider = {"profile", s_fetch};
