/*
 * cli.h: the `vigil` command line — check, run, test — as a library call so
 * tests can drive it in-process.
 * Owns: flag tables, help text, exit codes. Must never: exit(); it returns
 * the exit status.
 * Exit status: 0 ok (a run whose bad lines went to dead letters is ok);
 * 1 invalid rules, registry or config, or failed rule tests; 2 usage (unknown
 * flag, missing file, bad value); 3 an input or output failed while running.
 */
#ifndef VG_CLI_H
#define VG_CLI_H

enum { VG_EXIT_OK = 0, VG_EXIT_INVALID = 1, VG_EXIT_USAGE = 2, VG_EXIT_IO = 3 };

/** @brief Run the command line @p argv. @returns the process exit status. */
int vg_cli_main(int argc, char **argv);

#endif
