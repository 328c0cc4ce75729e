/* The mwl subcommands: each tools/mwl/<command>.c defines one entry point
 * that parses its own options and returns the process exit status. */
#ifndef MWL_TOOLS_COMMANDS_H
#define MWL_TOOLS_COMMANDS_H

/* Exit statuses shared by the commands (documented in mwl.1). */
enum {
    MWL_EXIT_OK = 0,
    MWL_EXIT_FAILURE = 1, /* the operation failed, or the peer answered with a failure/cancel status */
    MWL_EXIT_USAGE = 2,   /* bad command line */
    MWL_EXIT_NETWORK = 3  /* network or association failure */
};

typedef int (*mwl_command_fn)(int argc, char **argv);

#define MWL_COMMAND(name) int mwl_cmd_##name(int argc, char **argv)
MWL_COMMAND(dump);
MWL_COMMAND(echo);
MWL_COMMAND(serve);
MWL_COMMAND(find);
MWL_COMMAND(import);
MWL_COMMAND(ls);
MWL_COMMAND(rm);
MWL_COMMAND(expire);
MWL_COMMAND(explain);
MWL_COMMAND(export);
MWL_COMMAND(demo);
MWL_COMMAND(hl7send);

#endif
