/* mwl hl7send: send HL7 v2 messages over MLLP and print each ACK -- for
 * tests, admins and RIS integrators checking a feed into `mwl serve
 * --hl7-port` (or any other MLLP receiver). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "commands.h"
#include "hl7/hl7.h"
#include "net/net.h"
#include "util.h"

#define FILE_MAX (64u * 1024u * 1024u)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mwl hl7send [--host H] [--port P] [--timeout S] [--quiet] [--tls [--tls-ca FILE]\n"
            "                   [--tls-cert FILE --tls-key FILE]] FILE...\n\n"
            "Sends HL7 v2 messages over MLLP (0x0B message 0x1C 0x0D), one at a time on one\n"
            "connection, and prints each acknowledgement, one segment per line. A FILE\n"
            "holds one message or several, separated by blank lines (or each starting\n"
            "with MSH); line ends in the file (LF, CR LF or CR) become the CR segment\n"
            "terminators HL7 wants. '-' reads standard input.\n\n"
            "  --host H       the receiver (default 127.0.0.1)\n"
            "  --port P       its MLLP port (default 2575)\n"
            "  --timeout S    seconds allowed to connect and for each ACK (default 30)\n"
            "  --quiet        print only a line per message (file, MSH-10, MSA-1, error text)\n" TOOL_TLS_HELP
            "\nexit status: 0 when every message was answered AA (or CA), 1 when any got\n"
            "AE/AR (or another code), 2 for a bad command line or file, 3 when the\n"
            "connection failed or an ACK did not come in time.\n");
}

/* A file's messages, each with CR segment terminators. */
typedef struct message_list {
    mwl_wbuf *msgs;
    size_t count, cap;
} message_list;

static int add_message(message_list *l, mwl_wbuf *cur)
{
    if (cur->len == 0)
        return 0;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        mwl_wbuf *m = realloc(l->msgs, cap * sizeof *m);
        if (!m)
            return -1;
        l->msgs = m;
        l->cap = cap;
    }
    l->msgs[l->count++] = *cur;
    mwl_wbuf_init(cur, NULL);
    return 0;
}

/* Splits `data` into lines at LF, CR LF or CR; a blank line, or a line
 * starting with MSH, begins a new message. */
static int split_messages(const uint8_t *data, size_t len, message_list *out)
{
    mwl_wbuf cur;
    mwl_wbuf_init(&cur, NULL);
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && data[j] != '\n' && data[j] != '\r')
            j++;
        size_t line_len = j - i;
        /* Blank (or whitespace-only) line: the end of a message. */
        bool blank = true;
        for (size_t k = i; k < j; k++)
            if (data[k] != ' ' && data[k] != '\t')
                blank = false;
        if (blank) {
            if (add_message(out, &cur) != 0)
                return -1;
        } else {
            if (line_len >= 3 && memcmp(data + i, "MSH", 3) == 0 && add_message(out, &cur) != 0)
                return -1;
            mwl_wbuf_put(&cur, data + i, line_len);
            mwl_wbuf_put_u8(&cur, '\r');
        }
        if (j < len && data[j] == '\r' && j + 1 < len && data[j + 1] == '\n')
            j++;
        i = j + 1;
    }
    if (cur.status != MWL_OK || add_message(out, &cur) != 0)
        return -1;
    mwl_wbuf_clear(&cur);
    return 0;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= FILE_MAX) {
                free(buf);
                buf = NULL;
                errno = EFBIG;
                break;
            }
            uint8_t *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
        errno = EIO;
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return buf;
}

/* MSH-10 of a message for the report, as the server's parser reads it;
 * "" when it has none or no MSH. */
static void control_id_of(const mwl_wbuf *m, char *out, size_t cap)
{
    out[0] = 0;
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_hl7_msg *msg = NULL;
    mwl_hl7_error e;
    int rc = mwl_hl7_parse(m->data, m->len, NULL, &arena, &msg, &e);
    /* a message with errors past its MSH still has one */
    const mwl_hl7_msh *h = msg && rc != MWL_E_NOMEM ? mwl_hl7_header(msg) : NULL;
    if (h)
        snprintf(out, cap, "%s", h->control_id);
    mwl_arena_clear(&arena);
}

int mwl_cmd_hl7send(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    uint16_t port = 2575;
    int timeout_ms = 30000;
    bool quiet = false;
    tool_tls tls = {0};
    const char **files = calloc((size_t)argc, sizeof *files);
    size_t file_count = 0;
    if (!files)
        return MWL_EXIT_FAILURE;
    int exit_code = MWL_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *v;
        bool missing = false;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            free(files);
            return MWL_EXIT_OK;
        } else if (strcmp(arg, "--quiet") == 0) {
            quiet = true;
        } else if (strncmp(arg, "--tls", 5) == 0) {
            int t = tool_tls_option("hl7send", argc, argv, &i, &tls);
            if (t <= 0) {
                if (t == 0)
                    fprintf(stderr, "mwl hl7send: unknown option '%s' (see --help)\n", arg);
                free(files);
                return MWL_EXIT_USAGE;
            }
        } else if ((v = tool_option_value("hl7send", argc, argv, &i, "--host", &missing))) {
            if (missing || !v[0]) {
                free(files);
                return MWL_EXIT_USAGE;
            }
            host = v;
        } else if ((v = tool_option_value("hl7send", argc, argv, &i, "--port", &missing))) {
            mwl_diag d;
            if (missing || mwl_net_parse_port(v, &port, &d) != MWL_OK || port == 0) {
                if (!missing)
                    fprintf(stderr, "mwl hl7send: bad port '%s'\n", v);
                free(files);
                return MWL_EXIT_USAGE;
            }
        } else if ((v = tool_option_value("hl7send", argc, argv, &i, "--timeout", &missing))) {
            if (missing || !tool_parse_seconds(v, &timeout_ms)) {
                if (!missing)
                    fprintf(stderr, "mwl hl7send: --timeout wants seconds > 0 and <= 86400, not '%s'\n", v);
                free(files);
                return MWL_EXIT_USAGE;
            }
        } else if (arg[0] == '-' && arg[1] != 0) {
            fprintf(stderr, "mwl hl7send: unknown option '%s' (see --help)\n", arg);
            free(files);
            return MWL_EXIT_USAGE;
        } else {
            files[file_count++] = arg;
        }
    }
    if (file_count == 0) {
        usage(stderr);
        free(files);
        return MWL_EXIT_USAGE;
    }

    /* Every file first: a bad file is a usage error before anything is sent. */
    message_list list = {NULL, 0, 0};
    size_t *file_of = NULL;
    for (size_t f = 0; f < file_count; f++) {
        size_t len = 0;
        uint8_t *data = read_all(files[f], &len);
        if (!data) {
            fprintf(stderr, "mwl hl7send: %s: %s\n", files[f], strerror(errno));
            exit_code = MWL_EXIT_USAGE;
            break;
        }
        size_t before = list.count;
        int rc = split_messages(data, len, &list);
        free(data);
        size_t *fo = realloc(file_of, (list.count + 1) * sizeof *fo);
        if (rc != 0 || !fo) {
            free(fo ? fo : file_of);
            file_of = NULL;
            fprintf(stderr, "mwl hl7send: out of memory\n");
            exit_code = MWL_EXIT_FAILURE;
            break;
        }
        file_of = fo;
        for (size_t k = before; k < list.count; k++)
            file_of[k] = f;
        if (list.count == before) {
            fprintf(stderr, "mwl hl7send: %s: no message in it\n", files[f]);
            exit_code = MWL_EXIT_USAGE;
            break;
        }
    }

    mwl_conn *conn = NULL;
    mwl_tls *tls_ctx = NULL;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    if (exit_code == MWL_EXIT_OK) {
        int rc = mwl_net_connect(host, port, timeout_ms, NULL, &conn, &diag);
        if (rc == MWL_OK && tls.on) {
            mwl_tls_config tc;
            mwl_tls_config_init(&tc, false);
            tc.ca_file = tls.ca;
            tc.cert_file = tls.cert;
            tc.key_file = tls.key;
            tc.verify_name = !tls.no_name_check;
            rc = mwl_tls_new(&tc, NULL, &tls_ctx, &diag);
            if (rc == MWL_OK) {
                mwl_conn *wrapped = NULL;
                rc = mwl_tls_wrap(tls_ctx, conn, host, &wrapped, &diag);
                conn = rc == MWL_OK ? wrapped : NULL;
            } else {
                mwl_conn_close(conn);
                conn = NULL;
            }
            if (rc == MWL_OK)
                rc = mwl_tls_handshake(conn, mwl_deadline_in(timeout_ms), &diag);
        }
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl hl7send: %s port %u: %s\n", host, (unsigned)port,
                    diag.msg[0] ? diag.msg : mwl_status_str(rc));
            exit_code = MWL_EXIT_NETWORK;
        }
    }

    mwl_mllp framer;
    mwl_mllp_init(&framer, FILE_MAX, NULL);
    for (size_t k = 0; exit_code != MWL_EXIT_NETWORK && exit_code != MWL_EXIT_USAGE && k < list.count; k++) {
        mwl_wbuf frame;
        mwl_wbuf_init(&frame, NULL);
        mwl_mllp_wrap(list.msgs[k].data, list.msgs[k].len, &frame);
        char id[64];
        control_id_of(&list.msgs[k], id, sizeof id);
        uint64_t deadline = mwl_deadline_in(timeout_ms);
        mwl_iov iov = {frame.data, frame.len};
        int rc = frame.status != MWL_OK ? frame.status
                                        : mwl_conn_write_all_deadline(conn, &iov, 1, deadline, NULL);
        mwl_wbuf_clear(&frame);
        const uint8_t *ack = NULL;
        size_t ack_len = 0;
        static uint8_t buf[65536];
        static size_t buf_off, buf_len;
        while (rc == MWL_OK && !ack) {
            if (buf_off == buf_len) {
                size_t n = 0;
                rc = mwl_conn_read_deadline(conn, buf, sizeof buf, &n, deadline);
                buf_off = 0;
                buf_len = rc == MWL_OK ? n : 0;
                continue;
            }
            size_t used = 0;
            int fr = mwl_mllp_feed(&framer, buf + buf_off, buf_len - buf_off, &used, &ack, &ack_len);
            buf_off += used;
            if (fr != MWL_OK && fr != MWL_AGAIN)
                rc = fr;
        }
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl hl7send: %s message %zu (MSH-10 %s): no ACK: %s\n", files[file_of[k]], k + 1,
                    id,
                    rc == MWL_E_TIMEOUT  ? "timed out"
                    : rc == MWL_E_CLOSED ? "the receiver closed the connection"
                                         : mwl_status_str(rc));
            exit_code = MWL_EXIT_NETWORK;
            break;
        }
        char code[3], acked[64], text[256];
        int ar = mwl_hl7_ack_read(ack, ack_len, code, acked, sizeof acked, text, sizeof text);
        bool ok = ar == MWL_OK && (strcmp(code, "AA") == 0 || strcmp(code, "CA") == 0);
        if (!ok && exit_code == MWL_EXIT_OK)
            exit_code = MWL_EXIT_FAILURE;
        if (ar == MWL_OK && strcmp(acked, id) != 0)
            fprintf(stderr, "mwl hl7send: %s message %zu: the ACK names MSH-10 '%s', not '%s'\n",
                    files[file_of[k]], k + 1, acked, id);
        char shown[512];
        (void)mwl_log_escape(text, strlen(text), shown, sizeof shown, NULL);
        if (quiet) {
            printf("%s\t%s\t%s%s%s\n", files[file_of[k]], id, ar == MWL_OK ? code : "??", text[0] ? "\t" : "",
                   shown);
        } else {
            /* The ACK as it came, one segment per line, control bytes
             * escaped: it is the peer's text. */
            for (size_t a = 0; a < ack_len;) {
                size_t b = a;
                while (b < ack_len && ack[b] != '\r' && ack[b] != '\n')
                    b++;
                if (b > a) {
                    char line[4096];
                    (void)mwl_log_escape((const char *)ack + a, b - a, line, sizeof line, NULL);
                    printf("%s\n", line);
                }
                a = b + 1;
            }
            printf("\n");
        }
        fflush(stdout);
    }
    mwl_mllp_clear(&framer);
    mwl_conn_close(conn);
    mwl_tls_free(tls_ctx);
    for (size_t k = 0; k < list.count; k++)
        mwl_wbuf_clear(&list.msgs[k]);
    free(list.msgs);
    free(file_of);
    free(files);
    return exit_code;
}
