/* The credential_process provider: a profile's command, run without a
 * shell, its JSON output read as credentials. */
#include "aws/credentials/provider.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define LOG_SCOPE "credentials"

extern char **environ;

#define PROCESS_OUTPUT_MAX (64 * 1024)
#define PROCESS_TIMEOUT_S  60

/* ---- credential_process ---- */

/* Python's shlex.split (POSIX mode, no comments), as botocore splits the
 * command: words separated by blanks, '...' literal, "..." with \" and \\
 * escapes, \ escaping any character outside quotes. NULL with err. */
static char **s_shell_split(const char *cmd, char *err, size_t err_len)
{
    size_t cap = 8, n = 0;
    char **argv = calloc(cap, sizeof *argv);
    char *word = malloc(strlen(cmd) + 1);
    if (!argv || !word)
        goto oom;
    const char *p = cmd;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        size_t w = 0;
        while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
            if (*p == '\\') {
                if (!p[1]) {
                    cred_set_err(err, err_len, "credential_process: No escaped character");
                    goto fail;
                }
                word[w++] = p[1];
                p += 2;
            } else if (*p == '\'') {
                const char *close = strchr(p + 1, '\'');
                if (!close) {
                    cred_set_err(err, err_len, "credential_process: No closing quotation");
                    goto fail;
                }
                memcpy(word + w, p + 1, (size_t)(close - p - 1));
                w += (size_t)(close - p - 1);
                p = close + 1;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    word[w++] = *p++;
                }
                if (*p != '"') {
                    cred_set_err(err, err_len, "credential_process: No closing quotation");
                    goto fail;
                }
                p++;
            } else {
                word[w++] = *p++;
            }
        }
        if (n + 2 > cap) {
            char **g = realloc(argv, 2 * cap * sizeof *argv);
            if (!g)
                goto oom;
            argv = g;
            cap *= 2;
        }
        argv[n] = malloc(w + 1);
        if (!argv[n])
            goto oom;
        memcpy(argv[n], word, w);
        argv[n][w] = 0;
        argv[++n] = NULL;
    }
    free(word);
    if (n == 0) {
        cred_set_err(err, err_len, "credential_process is empty");
        free(argv);
        return NULL;
    }
    return argv;
oom:
    cred_set_err(err, err_len, "out of memory");
fail:
    free(word);
    if (argv)
        for (size_t i = 0; i < n; i++)
            free(argv[i]);
    free(argv);
    return NULL;
}

static void s_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether `cmd` names an executable file (searched in PATH when it has no
 * '/', as execvp does), so that a wrong command is said as such rather than
 * as the child's exit status 127. */
static int s_executable(const char *cmd)
{
    struct stat st;
    if (strchr(cmd, '/'))
        return stat(cmd, &st) == 0 && S_ISREG(st.st_mode) && access(cmd, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char full[4096];
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        snprintf(full, sizeof full, "%.*s/%s", (int)n, n ? p : ".", cmd);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
            return 1;
        if (!end)
            return 0;
        p = end;
    }
}

/* Run argv (no shell, PATH searched) with stdout on a pipe; stdin and
 * stderr are ours. Reads at most PROCESS_OUTPUT_MAX bytes within
 * timeout_ms; the process is killed when it overruns either. */
static int s_run(char **argv, int64_t timeout_ms, struct fanout_sbuf *outb, int *status,
                 char *err, size_t err_len)
{
    if (!s_executable(argv[0])) {
        cred_set_err(err, err_len, "credential_process: cannot run %.200s: %s", argv[0],
                     strchr(argv[0], '/') ? "not an executable file" : "not found in PATH");
        return -1;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) {
        cred_set_err(err, err_len, "credential_process: pipe: %s", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    pid_t pid;
    char **env = fanout_child_env();
    int rc = env ? posix_spawnp(&pid, argv[0], &fa, NULL, argv, env) : ENOMEM;
    free(env);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        cred_set_err(err, err_len, "credential_process: cannot run %.200s: %s", argv[0],
                     strerror(rc));
        return -1;
    }
    int64_t until = s_mono_ms() + timeout_ms;
    const char *why = NULL;
    for (;;) {
        int64_t left = until - s_mono_ms();
        if (left <= 0) {
            why = "timed out";
            break;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        char chunk[4096];
        ssize_t r = read(fds[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (outb->len + (size_t)r > PROCESS_OUTPUT_MAX) {
            why = "wrote more than 64 KiB";
            break;
        }
        if (fanout_sbuf_put(outb, chunk, (size_t)r)) {
            why = "out of memory";
            break;
        }
    }
    close(fds[0]);
    if (why)
        kill(pid, SIGKILL);
    /* Its stdout is closed: wait for the exit within the time left. */
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0) {
        if (!why && s_mono_ms() > until) {
            why = "timed out";
            kill(pid, SIGKILL);
        }
        cred_sleep_ms(2);
    }
    if (why) {
        cred_set_err(err, err_len, "credential_process %.200s %s (limit %" PRId64 " ms)",
                     argv[0], why, timeout_ms);
        return -1;
    }
    *status = st;
    return 0;
}

static int s_fetch(const struct cred_scope *scope, struct fanout_credentials *out,
                   char *err, size_t err_len)
{
    const char *profile = scope->profile;
    char *cmd = cred_pv(profile, "credential_process");
    if (!cmd)
        return CRED_NOT_FOUND;
    long timeout_s;
    char **argv = NULL;
    if (cred_env_int("FANOUT_CREDENTIAL_PROCESS_TIMEOUT_SECONDS", PROCESS_TIMEOUT_S, 1,
                     3600, &timeout_s, err, err_len) ||
        !(argv = s_shell_split(cmd, err, err_len))) {
        free(cmd);
        return CRED_ERROR;
    }
    free(cmd);
    struct fanout_sbuf outb = {0};
    int status = 0, rc = CRED_ERROR;
    if (s_run(argv, cred_timeout_ms((int64_t)timeout_s * 1000), &outb, &status, err,
              err_len) == 0) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            cred_set_err(err, err_len, "credential_process %.200s (profile \"%s\") %s %d",
                         argv[0], profile,
                         WIFEXITED(status) ? "exited with status" : "was killed by signal",
                         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        } else {
            json_t *j =
                json_loadb(outb.bytes ? (const char *)outb.bytes : "", outb.len, 0, NULL);
            json_t *ver = json_object_get(j, "Version");
            const char *id = json_string_value(json_object_get(j, "AccessKeyId"));
            const char *secret = json_string_value(json_object_get(j, "SecretAccessKey"));
            const char *token = json_string_value(json_object_get(j, "SessionToken"));
            json_t *jexp = json_object_get(j, "Expiration");
            const char *exp = json_string_value(jexp);
            if (!json_is_object(j)) {
                cred_set_err(
                    err, err_len,
                    "credential_process %.200s (profile \"%s\"): the output is not a "
                    "JSON object",
                    argv[0], profile);
            } else if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
                cred_set_err(
                    err, err_len,
                    "credential_process %.200s (profile \"%s\"): Unsupported version "
                    "for credential process provider; expected \"Version\": 1",
                    argv[0], profile);
            } else if (!id || !*id || !secret || !*secret) {
                cred_set_err(
                    err, err_len,
                    "credential_process %.200s (profile \"%s\"): the output lacks %s",
                    argv[0], profile, !id || !*id ? "AccessKeyId" : "SecretAccessKey");
            } else if (cred_expiration_not_string(jexp)) {
                cred_set_err(
                    err, err_len,
                    "credential_process %.200s (profile \"%s\"): Expiration is %s, "
                    "not a string (an ISO 8601 time)",
                    argv[0], profile, fanout_json_type_name(jexp));
            } else if (cred_fill(out, "process", id, secret, token && *token ? token : NULL,
                                 err, err_len) == 0) {
                if (exp && cred_parse_iso8601(exp, &out->expires_ms)) {
                    cred_wipe(out, sizeof *out);
                    cred_set_err(err, err_len,
                                 "credential_process %.200s (profile \"%s\"): Expiration "
                                 "\"%.40s\" is not ISO 8601",
                                 argv[0], profile, exp);
                } else {
                    rc = CRED_FOUND;
                }
            }
            if (j)
                json_object_clear(j);
            json_decref(j);
        }
    }
    cred_wipe(outb.bytes, outb.len);
    fanout_sbuf_free(&outb);
    s_argv_free(argv);
    return rc;
}

const struct cred_provider cred_process_provider = {"credential_process", s_fetch};
