/* mwl echo: a Verification SCU (PS3.4 Annex A, PS3.7 §9.1.5). Opens one
 * association, sends --repeat C-ECHO requests on it, prints each status
 * with its meaning and round-trip time, and releases. Exit 0 only when
 * every C-ECHO succeeded; every failure is one line on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "client/client.h"
#include "commands.h"
#include "util.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mwl echo [--aet AE] [--aec AE] [--timeout S] [--repeat N] [--tls [--tls-ca FILE]\n"
            "                [--tls-cert FILE --tls-key FILE]] [--verbose] HOST PORT\n"
            "\n"
            "Checks a DICOM peer with C-ECHO (Verification).\n"
            "\n"
            "  --aet AE       our (calling) AE title (default %s)\n"
            "  --aec AE       the peer's (called) AE title (default %s)\n"
            "  --timeout S    seconds allowed to connect, to associate and for each\n"
            "                 response (default 10; fractions allowed)\n"
            "  --repeat N     send N C-ECHO requests on the association (default 1)\n" TOOL_TLS_HELP
            "  -v, --verbose  log the association on stderr\n"
            "  -h, --help     show this help\n"
            "\n"
            "exit status: 0 every C-ECHO succeeded, 1 the peer answered with a failure\n"
            "status, 2 bad command line, 3 network or association failure.\n",
            MWL_SCU_DEFAULT_CALLING_AE, MWL_SCU_DEFAULT_CALLED_AE);
}

static void log_to_stderr(void *user, mwl_log_level level, const char *msg)
{
    (void)user;
    fprintf(stderr, "mwl echo: %s: %s\n", mwl_log_level_name(level), msg);
}

static void describe_failure(const mwl_scu *scu)
{
    const mwl_scu_error *e = mwl_scu_last_error(scu);
    fprintf(stderr, "mwl echo: %s\n", e->msg[0] ? e->msg : mwl_status_str(e->status));
}

int mwl_cmd_echo(int argc, char **argv)
{
    mwl_scu_config cfg;
    mwl_scu_config_init(&cfg);
    int timeout_ms = 10000;
    long repeat = 1;
    bool verbose = false;
    tool_tls tls = {0};
    const char *positional[2];
    int npos = 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *v;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return MWL_EXIT_OK;
        } else if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            verbose = true;
        } else if (strncmp(arg, "--tls", 5) == 0) {
            int t = tool_tls_option("echo", argc, argv, &i, &tls);
            if (t < 0)
                return MWL_EXIT_USAGE;
            if (t == 0) {
                fprintf(stderr, "mwl echo: unknown option '%s' (see 'mwl echo --help')\n", arg);
                return MWL_EXIT_USAGE;
            }
        } else if ((v = tool_option_value("echo", argc, argv, &i, "--aet", NULL))) {
            cfg.calling_ae = v;
        } else if ((v = tool_option_value("echo", argc, argv, &i, "--aec", NULL))) {
            cfg.called_ae = v;
        } else if ((v = tool_option_value("echo", argc, argv, &i, "--timeout", NULL))) {
            if (!tool_parse_seconds(v, &timeout_ms)) {
                fprintf(stderr, "mwl echo: --timeout wants seconds > 0 and <= 86400, not '%s'\n", v);
                return MWL_EXIT_USAGE;
            }
        } else if ((v = tool_option_value("echo", argc, argv, &i, "--repeat", NULL))) {
            if (!tool_parse_long(v, 1, 1000000, &repeat)) {
                fprintf(stderr, "mwl echo: --repeat wants a count from 1 to 1000000, not '%s'\n", v);
                return MWL_EXIT_USAGE;
            }
        } else if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "mwl echo: unknown option '%s' (see 'mwl echo --help')\n", arg);
            return MWL_EXIT_USAGE;
        } else if (npos < 2) {
            positional[npos++] = arg;
        } else {
            fprintf(stderr, "mwl echo: too many arguments (see 'mwl echo --help')\n");
            return MWL_EXIT_USAGE;
        }
    }
    if (npos != 2) {
        usage(stderr);
        return MWL_EXIT_USAGE;
    }
    cfg.host = positional[0];
    mwl_diag diag;
    mwl_diag_clear(&diag);
    if (mwl_net_parse_port(positional[1], &cfg.port, &diag) != MWL_OK || cfg.port == 0) {
        fprintf(stderr, "mwl echo: bad port '%s'\n", positional[1]);
        return MWL_EXIT_USAGE;
    }
    cfg.connect_timeout_ms = timeout_ms;
    cfg.acse_timeout_ms = timeout_ms;
    cfg.dimse_timeout_ms = timeout_ms;
    tool_tls_apply(&tls, &cfg);
    if (verbose) {
        mwl_log_set_sink(log_to_stderr, NULL);
        mwl_log_set_level(MWL_LOG_DEBUG);
    }

    mwl_scu *scu;
    int rc = mwl_scu_new(&cfg, &scu, &diag);
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl echo: %s\n", diag.msg[0] ? diag.msg : mwl_status_str(rc));
        return rc == MWL_E_INVALID ? MWL_EXIT_USAGE : MWL_EXIT_FAILURE;
    }
    if (mwl_scu_associate(scu) != MWL_OK) {
        describe_failure(scu);
        mwl_scu_free(scu);
        return MWL_EXIT_NETWORK;
    }
    const mwl_scu_assoc_info *info = mwl_scu_get_assoc_info(scu);
    printf("association accepted by %s port %u (called AE %s), peer max PDU %u", cfg.host, (unsigned)cfg.port,
           cfg.called_ae, (unsigned)info->peer_max_pdu_length);
    /* The peer's words, shown as data (mwl_log_escape): no terminal
     * control reaches the screen. */
    char shown[3 * 256];
    if (info->peer_implementation_version_name[0]) {
        const char *v = info->peer_implementation_version_name;
        (void)mwl_log_escape(v, strlen(v), shown, sizeof shown, NULL);
        printf(", peer implementation %s", shown);
    }
    if (info->tls_subject) {
        (void)mwl_log_escape(info->tls_subject, strlen(info->tls_subject), shown, sizeof shown, NULL);
        printf(", TLS with %s%s", shown[0] ? shown : "(no certificate subject)",
               info->tls_resumed ? " (session resumed)" : "");
    }
    printf("\n");
    if (!info->verification_accepted) {
        fprintf(stderr, "mwl echo: %s port %u does not accept Verification: %s\n", cfg.host,
                (unsigned)cfg.port, mwl_scu_pctx_result_str(info->verification_result));
        if (mwl_scu_release(scu) != MWL_OK)
            describe_failure(scu);
        mwl_scu_free(scu);
        return MWL_EXIT_NETWORK;
    }
    printf("Verification accepted in %s\n", mwl_scu_ts_name(info->verification_ts));

    int exit_code = MWL_EXIT_OK;
    for (long n = 1; n <= repeat; n++) {
        uint16_t status = 0;
        uint16_t message_id = mwl_scu_next_message_id(scu);
        uint64_t start = mwl_now_ms();
        rc = mwl_scu_echo(scu, &status);
        uint64_t elapsed = mwl_now_ms() - start;
        if (rc != MWL_OK) {
            describe_failure(scu);
            mwl_scu_free(scu);
            return MWL_EXIT_NETWORK;
        }
        /* "Success" says it all; otherwise the class and the meaning. */
        const char *cls = mwl_dimse_class_str(mwl_dimse_status_class(status));
        const char *meaning = mwl_dimse_status_str(status);
        printf("C-ECHO %ld (Message ID %u): status 0x%04X %s%s%s, round trip %llu ms\n", n,
               (unsigned)message_id, (unsigned)status, cls, strcmp(cls, meaning) ? ": " : "",
               strcmp(cls, meaning) ? meaning : "", (unsigned long long)elapsed);
        if (status != MWL_DIMSE_STATUS_SUCCESS) {
            fprintf(stderr, "mwl echo: C-ECHO %ld failed: status 0x%04X %s\n", n, (unsigned)status,
                    mwl_dimse_status_str(status));
            exit_code = MWL_EXIT_FAILURE;
        }
    }
    if (mwl_scu_release(scu) != MWL_OK) {
        describe_failure(scu);
        mwl_scu_free(scu);
        return MWL_EXIT_NETWORK;
    }
    printf("association released\n");
    mwl_scu_free(scu);
    return exit_code;
}
