/* Starting a test server (a Python script that prints the port it bound on
 * its first stdout line) from a Check test. */
#ifndef FANOUT_TEST_SERVER_H
#define FANOUT_TEST_SERVER_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* How long a server may take to print its port. */
#define FANOUT_TEST_WAIT_PORT_MS 20000

static inline int64_t fanout_test_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Spawn argv (argv[0] is a path, NULL-terminated) with its stdout on a pipe
 * and return the port it prints first; *pid is the child. `what` names the
 * server in failure messages. Fails the test when it does not start. */
static inline int fanout_test_spawn_server(const char *const *argv, pid_t *pid,
                                           const char *what)
{
    int fds[2];
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    int rc = posix_spawn(pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    ck_assert_msg(rc == 0, "posix_spawn %s: %s", argv[0], strerror(rc));

    char line[32];
    size_t n = 0;
    int64_t until = fanout_test_mono_ms() + FANOUT_TEST_WAIT_PORT_MS;
    while (n < sizeof line - 1 && (n == 0 || line[n - 1] != '\n')) {
        int64_t left = until - fanout_test_mono_ms();
        ck_assert_msg(left > 0, "%s did not print its port", what);
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        ck_assert_int_ge(pr, 0);
        if (pr == 0)
            continue;
        ssize_t r = read(fds[0], line + n, sizeof line - 1 - n);
        ck_assert_msg(r > 0, "%s exited before printing its port", what);
        n += (size_t)r;
    }
    close(fds[0]);
    line[n] = 0;
    int port = atoi(line);
    ck_assert_msg(port > 0 && port < 65536, "%s: bad port line \"%s\"", what, line);
    return port;
}

/* Stop a server started above: SIGTERM, then SIGKILL after 5 s; *pid
 * becomes -1. Nothing to do when *pid <= 0. */
static inline void fanout_test_stop_server(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    int64_t until = fanout_test_mono_ms() + 5000;
    int status;
    while (waitpid(*pid, &status, WNOHANG) == 0) {
        if (fanout_test_mono_ms() > until) {
            kill(*pid, SIGKILL);
            waitpid(*pid, &status, 0);
            break;
        }
        usleep(2000);
    }
    *pid = -1;
}

#endif
