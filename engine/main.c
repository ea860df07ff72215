/* fanout: the Lambda `bootstrap` when AWS_LAMBDA_RUNTIME_API is set and no
 * command is given, else the command line (engine/cli). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "aws/client.h"
#include "aws/http.h"
#include "cli/cli.h"
#include "common/log.h"
#include "common/util.h"

int main(int argc, char **argv)
{
    /* A peer closing a kept-alive connection must be an error, not a
     * signal that kills the process. */
    signal(SIGPIPE, SIG_IGN);
    /* libcurl's dependency tree brings GnuTLS (through librtmp and libldap,
     * which fanout never uses); without this its constructor initialises
     * itself when libcurl is loaded: 0.8 MB of pages and start-up CPU. A
     * GnuTLS built libcurl still initialises it explicitly. Set before any
     * thread starts; a value already set is kept, and a credential_process
     * does not inherit it. */
    fanout_env_set_own("GNUTLS_NO_IMPLICIT_INIT", "1");
    fanout_log_init();
    /* Cheap: libcurl is loaded by the first AWS request (aws/http.h). */
    if (fanout_http_global_init() != 0) {
        fprintf(stderr, "fanout: cannot initialise HTTP\n");
        return 2;
    }
    char aws_err[256];
    int rc;
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (fanout_aws_init(fanout_cli_remaining_ms, aws_err, sizeof aws_err) != 0) {
        fprintf(stderr, "fanout: %s\n", aws_err);
        rc = 2;
    } else if (argc < 2 && api && *api) {
        rc = fanout_cli_lambda(api);
    } else {
        rc = fanout_cli_main(argc, argv);
    }
    fanout_http_global_cleanup();
    return rc;
}
