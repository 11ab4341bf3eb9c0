/*
 * main.c: the vigil binary. Owns: nothing; it only dispatches to cli.c.
 */
#include "engine/cli.h"
#include "engine/pipeline.h"

#include <signal.h>
#include <string.h>

static void on_stop(int sig)
{
    (void)sig;
    vg_pipeline_request_stop();
}

int main(int argc, char **argv)
{
    /* a closed pipe or a server gone mid-write is an error value, not a death */
    signal(SIGPIPE, SIG_IGN);
    /* SIGINT/SIGTERM: finish cleanly (last checkpoint, alerts delivered); a second one kills */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return vg_cli_main(argc, argv);
}
