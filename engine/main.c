/*
 * main.c: the vigil binary. Owns: nothing; it only dispatches to cli.c.
 */
#include "engine/cli.h"

#include <signal.h>

int main(int argc, char **argv)
{
    /* a closed pipe or a server gone mid-write is an error value, not a death */
    signal(SIGPIPE, SIG_IGN);
    return vg_cli_main(argc, argv);
}
