/* mwl: one binary, git-style subcommands (STYLE.md §13). */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const struct {
    const char *name;
    mwl_command_fn fn;
    const char *summary;
} commands[] = {
    {"serve", mwl_cmd_serve, "run the worklist server (Verification + Modality Worklist FIND)"},
    {"find", mwl_cmd_find, "query a worklist server (C-FIND)"},
    {"echo", mwl_cmd_echo, "check a DICOM peer (C-ECHO)"},
    {"import", mwl_cmd_import, "import worklist items from DICOM files into the store"},
    {"ls", mwl_cmd_ls, "list stored worklist items"},
    {"rm", mwl_cmd_rm, "remove stored worklist items"},
    {"expire", mwl_cmd_expire, "remove worklist items scheduled or finished too long ago"},
    {"explain", mwl_cmd_explain, "say why a stored worklist item does (not) match a query"},
    {"export", mwl_cmd_export, "export stored worklist items as DICOM files"},
    {"demo", mwl_cmd_demo, "create a database with demo worklist items"},
    {"dump", mwl_cmd_dump, "print DICOM files as a tree"},
    {"hl7send", mwl_cmd_hl7send, "send HL7 v2 messages over MLLP and print the ACKs"},
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: mwl <command> [options]\n\nmwl %s: a DICOM Modality Worklist server, client and library.\n\n"
        "commands:\n",
        MWL_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'mwl <command> --help' describes a command; 'man mwl' has everything.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return MWL_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return MWL_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("mwl %s\n", MWL_VERSION);
        return MWL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "mwl: unknown command '%s' (see 'mwl --help')\n", cmd);
    return MWL_EXIT_USAGE;
}
