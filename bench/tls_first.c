/* The first HTTPS request of N threads at once, as a cold process with
 * FANOUT_MAX_PARALLEL targets makes them: each thread one call through
 * fanout_http_perform (so each on its own multi handle and connection).
 * Prints the process's CPU time and peak RSS (getrusage) and the requests
 * that failed; exit status 1 when any failed.
 *
 *   tls_first URL [THREADS [ROUNDS]]
 *
 * THREADS: 16 by default, at most 64. ROUNDS (1 by default): each thread
 * makes that many requests one after the other, each asking the server
 * to close (Connection: close), so each round connects again, as a warm
 * process whose connections were dropped: the TLS sessions of the first
 * round are resumed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "aws/http.h"
#include "common/log.h"

#define S_MAX_THREADS 64

static const char *s_url;
static int s_rounds = 1;
static pthread_barrier_t s_start;

static void *s_worker(void *arg)
{
    struct fanout_http_response *r = arg;
    static const struct fanout_http_header close = {"Connection", "close"};
    const struct fanout_http_request q = {.method = "GET",
                                          .url = s_url,
                                          .headers = &close,
                                          .header_count = s_rounds > 1,
                                          .timeout_ms = 60000,
                                          .connect_timeout_ms = 60000};
    const struct fanout_http_request *qs[1] = {&q};
    struct fanout_http_response *rs[1] = {r};
    int failed = 0;
    for (int i = 0; i < s_rounds; i++) {
        pthread_barrier_wait(&s_start); /* every thread, every round */
        if (!failed) {                  /* the first failure is kept */
            fanout_http_perform(qs, rs, 1);
            failed = r->error != FANOUT_HTTP_OK || r->status != 200;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s URL [THREADS [ROUNDS]]\n", argv[0]);
        return 2;
    }
    s_url = argv[1];
    int n = argc >= 3 ? atoi(argv[2]) : 16;
    if (n < 1 || n > S_MAX_THREADS) {
        fprintf(stderr, "THREADS: expected 1 to %d, got %s\n", S_MAX_THREADS, argv[2]);
        return 2;
    }
    s_rounds = argc == 4 ? atoi(argv[3]) : 1;
    if (s_rounds < 1 || s_rounds > 1000) {
        fprintf(stderr, "ROUNDS: expected 1 to 1000, got %s\n", argv[3]);
        return 2;
    }
    fanout_log_set(FANOUT_LOG_WARN, 0);
    fanout_http_global_init();
    pthread_t th[S_MAX_THREADS];
    struct fanout_http_response rs[S_MAX_THREADS] = {0};
    pthread_barrier_init(&s_start, NULL, (unsigned)n);
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, s_worker, &rs[i]);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        if (rs[i].error != FANOUT_HTTP_OK || rs[i].status != 200) {
            fprintf(stderr, "request %d: HTTP %ld, %s\n", i, rs[i].status,
                    rs[i].error_text);
            failed++;
        }
        fanout_http_response_clean_up(&rs[i]);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf(
        "threads %d rounds %d failed %d cpu_ms %.1f (user %.1f sys %.1f) maxrss_kb %ld\n",
        n, s_rounds, failed,
        (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
            (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3,
        ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3,
        ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3, ru.ru_maxrss);
    fanout_http_global_cleanup();
    pthread_barrier_destroy(&s_start);
    return failed ? 1 : 0;
}
