/* Regions, partitions and service endpoints. */
#ifndef FANOUT_ENDPOINT_H
#define FANOUT_ENDPOINT_H

#include <stddef.h>

/* A service the AWS layer knows. `id` is the lower-case form of the
 * AWS_ENDPOINT_URL_<ID> suffix. */
struct fanout_aws_service {
    const char *id;           /* "kinesis", "iot_data_plane", ... */
    const char *env_suffix;   /* "KINESIS", "IOT_DATA_PLANE", ... */
    const char *host_prefix;  /* "kinesis", "data-ats.iot", ...; NULL when
                                 the endpoint is always the user's (es) */
    const char *signing_name; /* "kinesis", "iotdata", "es", ... */
};

const struct fanout_aws_service *fanout_aws_service_find(const char *id);

/* The partition of a region ("aws", "aws-cn", "aws-us-gov", "aws-iso",
 * "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc") and its DNS suffix,
 * from the region's prefix. */
const char *fanout_aws_partition(const char *region);
const char *fanout_aws_dns_suffix(const char *region);

/* The region to send a request of `service` in `region` to: for a global
 * service (iam) the partition's signing region (aws: us-east-1, aws-cn:
 * cn-north-1, aws-us-gov: us-gov-west-1), which also picks its host;
 * `region` itself otherwise. */
const char *fanout_aws_signing_region(const char *service, const char *region);

/* The region to use: `explicit_region` when set, else AWS_REGION, else
 * AWS_DEFAULT_REGION, else the `region` of the profile (AWS_PROFILE or
 * "default") in the config file (AWS_CONFIG_FILE or ~/.aws/config).
 * Returns 0, or -1 with err saying what to set. */
int fanout_aws_region(const char *explicit_region, char *out, size_t out_len, char *err,
                      size_t err_len);

/* The base URL for `service` in `region`, in the AWS SDKs' order:
 * AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL, then the profile's
 * `services` section / `endpoint_url` in the config file, then
 * `user_endpoint` (a plugin's endpoint from its destination) when given,
 * then https://<prefix>.<region>.<dns suffix>. AWS_IGNORE_CONFIGURED_
 * ENDPOINT_URLS=true turns the environment and config overrides off.
 * Returns 0, or -1 with err. The URL has no trailing slash. */
int fanout_aws_endpoint_url(const char *service, const char *region,
                            const char *user_endpoint, char *url, size_t url_len, char *err,
                            size_t err_len);

/* Split a URL into scheme, host (with port when not the default) and base
 * path. Returns 0, or -1 when it is not http(s)://host[:port][/path]. */
int fanout_url_split(const char *url, char *scheme, size_t scheme_len, char *host_port,
                     size_t host_len, char *path, size_t path_len);

/* ---- shared config files (INI) ---- */

/* A value from the profile `profile` (NULL: AWS_PROFILE or "default") of
 * the config file (`credentials` 0) or the credentials file (1). Sections
 * are "[profile name]" in the config file (except "[default]") and
 * "[name]" in the credentials file. `key` may be "name.sub": sub-property
 * `sub` of property `name`, looked up first in the "[services X]" section
 * named by the profile's `services` key, then in the profile. Returns a
 * malloc'd string, or NULL. */
char *fanout_aws_profile_value(int credentials_file, const char *profile, const char *key);

/* A value of the "[sso-session NAME]" section of the config file, or NULL
 * when the section does not exist; "" when it exists without `key`.
 * Returns a malloc'd string. */
char *fanout_aws_sso_session_value(const char *session, const char *key);

#endif
