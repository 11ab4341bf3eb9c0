/*
 * main.c: the vigil binary. Owns: nothing; it only dispatches to cli.c.
 */
#include "engine/cli.h"

int main(int argc, char **argv)
{
    return vg_cli_main(argc, argv);
}
