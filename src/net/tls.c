/* TLS (PS3.15 Annex B, BCP 195) as an mwl_conn transport, on OpenSSL 3.
 * The only file that includes OpenSSL.
 *
 * A TLS connection wraps a connected TCP mwl_conn. OpenSSL talks to the
 * socket through a small BIO over that connection (mwl_conn_read /
 * mwl_conn_write), so writes never raise SIGPIPE and "would block" comes
 * back as the same MWL_AGAIN + wants the loop already understands. The
 * handshake is not a separate step: it happens inside the first reads and
 * writes, so a server session drives it with its ordinary non-blocking
 * reads, under the same timers (associate-timeout, ARTIM) as a plain one;
 * the blocking client runs mwl_tls_handshake with a deadline.
 *
 * Profile: TLS 1.2 and 1.3 only; for TLS 1.2 the AEAD suites of BCP 195
 * (the four GCM suites PS3.15 B.10 requires, their ECDSA and ChaCha20
 * variants), ECDHE or DHE (OpenSSL's automatic ≥ 2048-bit groups); OpenSSL's
 * TLS 1.3 suites (all AEAD). No compression, no renegotiation. Sessions are
 * cached (TLS 1.2 session IDs, TLS 1.3 tickets) so a client that offers
 * resumption gets it. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "net/net_int.h"

/* BCP 195 / PS3.15 B.10 (must) and B.11 (ECDSA, ChaCha20 of like
 * strength), TLS 1.2 names; TLS 1.3 suites are configured apart. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

struct mwl_tls {
    SSL_CTX *ctx;
    bool server;
    bool verify_peer;
    bool verify_name; /* client: check the server's name (mwl_tls_config) */
    const mwl_mem *mem;
    atomic_int refs;        /* the owner's, plus one per connection */
    CRYPTO_RWLOCK *lock;    /* guards session */
    SSL_SESSION *session;   /* client: the last resumable session the server gave */
    char session_host[256]; /* ... and the host that gave it */
};

typedef struct tls_conn {
    mwl_tls *tls;  /* a reference */
    mwl_conn *tcp; /* owned */
    SSL *ssl;
    bool handshake_done;
    bool fatal; /* an SSL error: the connection is unusable */
    char subject[256];
    char error[160];
    char server_name[256]; /* client: the host connected to ("" = unknown) */
} tls_conn;

/* ---- errors ----------------------------------------------------------------- */

/* OpenSSL's error queue into `out` (one line), and clears it. */
static void ssl_error_text(char *out, size_t cap, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[120] = "";
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    while (ERR_get_error() != 0) {
    }
    snprintf(out, cap, "%s%s%s", what, reason[0] ? ": " : "", reason);
}

/* ---- the BIO over an mwl_conn ---------------------------------------------------- */

static BIO_METHOD *conn_bio_method;
static CRYPTO_ONCE bio_once = CRYPTO_ONCE_STATIC_INIT;

static int bio_write(BIO *b, const char *in, size_t len, size_t *written)
{
    mwl_conn *tcp = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t n = 0;
    int rc = mwl_conn_write(tcp, in, len, &n);
    if (rc == MWL_OK) {
        *written = n;
        return 1;
    }
    if (rc == MWL_AGAIN)
        BIO_set_retry_write(b);
    return 0;
}

static int bio_read(BIO *b, char *out, size_t len, size_t *got)
{
    mwl_conn *tcp = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t n = 0;
    int rc = mwl_conn_read(tcp, out, len, &n);
    if (rc == MWL_OK) {
        *got = n;
        return 1;
    }
    if (rc == MWL_AGAIN)
        BIO_set_retry_read(b);
    else if (rc == MWL_E_CLOSED)
        BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF: return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default: return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void make_bio_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mwl_conn");
    if (m && BIO_meth_set_write_ex(m, bio_write) && BIO_meth_set_read_ex(m, bio_read) &&
        BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
        conn_bio_method = m;
    else
        BIO_meth_free(m);
}

/* ---- contexts ------------------------------------------------------------------- */

/* Client: keep the session (a TLS 1.2 session ID or a TLS 1.3 ticket, which
 * arrives after the handshake) with the host that gave it, to offer it on
 * the next connection to that host only: a resumed handshake checks
 * neither chain nor name, so another host must never be offered it. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    mwl_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    const tls_conn *tc = SSL_get_app_data(ssl);
    if (!t || !tc || !tc->server_name[0] || !SSL_SESSION_is_resumable(sess))
        return 0;
    CRYPTO_THREAD_write_lock(t->lock);
    SSL_SESSION_free(t->session);
    t->session = sess;
    snprintf(t->session_host, sizeof t->session_host, "%s", tc->server_name);
    CRYPTO_THREAD_unlock(t->lock);
    return 1; /* we keep the reference */
}

static void tls_release(mwl_tls *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    SSL_SESSION_free(t->session);
    SSL_CTX_free(t->ctx);
    CRYPTO_THREAD_lock_free(t->lock);
    mwl_mem_free(t->mem, t);
}

void mwl_tls_config_init(mwl_tls_config *cfg, bool server)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->server = server;
    cfg->verify_name = !server;
}

int mwl_tls_new(const mwl_tls_config *cfg, const mwl_mem *mem, mwl_tls **out, mwl_diag *diag)
{
    if (!cfg || !out)
        return MWL_E_INVALID;
    *out = NULL;
    if (cfg->server && (!cfg->cert_file || !cfg->cert_file[0] || !cfg->key_file || !cfg->key_file[0])) {
        mwl_diag_set(diag, 0, 0, "TLS: a server needs a certificate and a private key");
        return MWL_E_INVALID;
    }
    if ((cfg->cert_file && cfg->cert_file[0]) != (cfg->key_file && cfg->key_file[0])) {
        mwl_diag_set(diag, 0, 0, "TLS: a certificate needs its private key and the other way round");
        return MWL_E_INVALID;
    }
    if (cfg->server && cfg->verify_peer && (!cfg->ca_file || !cfg->ca_file[0])) {
        mwl_diag_set(diag, 0, 0, "TLS: verifying clients' certificates needs the CA file that signed them");
        return MWL_E_INVALID;
    }
    if (!CRYPTO_THREAD_run_once(&bio_once, make_bio_method) || !conn_bio_method) {
        mwl_diag_set(diag, 0, 0, "TLS: cannot set up OpenSSL");
        return MWL_E_NOMEM;
    }
    mwl_tls *t = mwl_mem_calloc(mem, 1, sizeof *t);
    if (!t)
        return MWL_E_NOMEM;
    t->mem = mem;
    t->server = cfg->server;
    t->verify_peer = cfg->verify_peer;
    t->verify_name = cfg->verify_name && !cfg->server;
    atomic_init(&t->refs, 1);
    char err[200] = "";
    t->lock = CRYPTO_THREAD_lock_new();
    t->ctx = t->lock ? SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method()) : NULL;
    int rc = t->ctx ? MWL_OK : MWL_E_NOMEM;
    if (rc == MWL_OK)
        SSL_CTX_set_app_data(t->ctx, t);
    if (rc == MWL_OK && (!SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) ||
                         !SSL_CTX_set_cipher_list(t->ctx, tls12_ciphers))) {
        ssl_error_text(err, sizeof err, "cannot set the protocol versions or cipher suites");
        rc = MWL_E_INVALID;
    }
    if (rc == MWL_OK) {
        SSL_CTX_set_options(t->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                        (cfg->server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
        SSL_CTX_set_dh_auto(t->ctx, 1);
        /* Level 2 whatever the build's default (upstream 3.0/3.1 have 1):
         * RSA and DHE keys of 2048 bits or more, ECC of 224 or more, no
         * SHA-1 signatures; B.11/B.13 ask for no less. */
        SSL_CTX_set_security_level(t->ctx, 2);
        /* Partial writes: the session retries with what is left (at least
         * as much), from a buffer that may have moved. */
        SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
    if (rc == MWL_OK && cfg->cert_file && cfg->cert_file[0]) {
        if (SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert_file) != 1) {
            ssl_error_text(err, sizeof err, cfg->cert_file);
            rc = MWL_E_INVALID;
        } else if (SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
            ssl_error_text(err, sizeof err, cfg->key_file);
            rc = MWL_E_INVALID;
        } else if (SSL_CTX_check_private_key(t->ctx) != 1) {
            ssl_error_text(err, sizeof err, "the private key does not belong to the certificate");
            rc = MWL_E_INVALID;
        }
    }
    if (rc == MWL_OK && cfg->ca_file && cfg->ca_file[0]) {
        if (SSL_CTX_load_verify_locations(t->ctx, cfg->ca_file, NULL) != 1) {
            ssl_error_text(err, sizeof err, cfg->ca_file);
            rc = MWL_E_INVALID;
        } else if (cfg->server) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
            if (names)
                SSL_CTX_set_client_CA_list(t->ctx, names); /* takes ownership */
        }
    } else if (rc == MWL_OK && !cfg->server && SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        ssl_error_text(err, sizeof err, "cannot load the system's trusted certificates");
        rc = MWL_E_INVALID;
    }
    if (rc == MWL_OK) {
        if (cfg->server) {
            /* Client certificates: required and checked, or not asked for. */
            SSL_CTX_set_verify(
                t->ctx,
                cfg->verify_peer ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_NONE, NULL);
            static const unsigned char sid_ctx[] = "mwl-dicom";
            SSL_CTX_set_session_id_context(t->ctx, sid_ctx, sizeof sid_ctx - 1);
            SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_SERVER);
        } else {
            /* The server's certificate is always checked (against the CA
             * file, or the system's store without one). */
            SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
            SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
            SSL_CTX_sess_set_new_cb(t->ctx, new_session);
        }
    }
    if (rc != MWL_OK) {
        if (err[0])
            mwl_diag_set(diag, 0, 0, "TLS: %s", err);
        if (!t->lock) {
            mwl_mem_free(mem, t);
            return rc;
        }
        tls_release(t);
        return rc;
    }
    *out = t;
    return MWL_OK;
}

void mwl_tls_free(mwl_tls *t)
{
    if (t)
        tls_release(t); /* connections hold their own reference */
}

/* ---- the connection ops ------------------------------------------------------- */

static void note_peer(tls_conn *tc)
{
    X509 *cert = SSL_get1_peer_certificate(tc->ssl);
    if (!cert)
        return;
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem) {
        X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
        int n = BIO_read(mem, tc->subject, (int)sizeof tc->subject - 1);
        tc->subject[n > 0 ? n : 0] = '\0';
        BIO_free(mem);
    }
    X509_free(cert);
}

/* Maps SSL_get_error after a failed call. */
static int ssl_status(mwl_conn *c, tls_conn *tc, int ret, unsigned *wants, const char *what)
{
    int e = SSL_get_error(tc->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ: *wants = MWL_NET_READ; return MWL_AGAIN;
    case SSL_ERROR_WANT_WRITE: *wants = MWL_NET_WRITE; return MWL_AGAIN;
    case SSL_ERROR_ZERO_RETURN: return MWL_E_CLOSED; /* close_notify */
    case SSL_ERROR_SYSCALL:
        /* The BIO failed: the TCP connection's status says why. */
        tc->fatal = true;
        if (!tc->error[0]) {
            int err = mwl_conn_errno(tc->tcp);
            snprintf(tc->error, sizeof tc->error, "%s: %s", what,
                     err ? strerror(err) : "the peer closed the connection");
        }
        ERR_clear_error();
        mwl_conn_set_errno(c, mwl_conn_errno(tc->tcp));
        return MWL_E_CLOSED;
    default:
        tc->fatal = true;
        if (!tc->error[0]) {
            char reason[150];
            ssl_error_text(reason, sizeof reason, what);
            long v = SSL_get_verify_result(tc->ssl);
            if (v != X509_V_OK)
                snprintf(tc->error, sizeof tc->error, "%s (%s)", reason, X509_verify_cert_error_string(v));
            else
                snprintf(tc->error, sizeof tc->error, "%s", reason);
        }
        ERR_clear_error();
        return MWL_E_IO;
    }
}

static int tls_read(mwl_conn *c, void *buf, size_t cap, size_t *n, unsigned *wants)
{
    tls_conn *tc = mwl_conn_impl(c);
    if (tc->fatal)
        return MWL_E_IO;
    ERR_clear_error();
    size_t got = 0;
    int ret = SSL_read_ex(tc->ssl, buf, cap, &got);
    if (!tc->handshake_done && SSL_is_init_finished(tc->ssl)) {
        tc->handshake_done = true;
        note_peer(tc);
    }
    if (ret == 1) {
        *n = got;
        return MWL_OK;
    }
    return ssl_status(c, tc, ret, wants, tc->handshake_done ? "TLS read" : "TLS handshake");
}

static int tls_writev(mwl_conn *c, const mwl_iov *iov, size_t count, size_t *n, unsigned *wants)
{
    tls_conn *tc = mwl_conn_impl(c);
    if (tc->fatal)
        return MWL_E_IO;
    /* One record stream: each buffer in turn, as far as the socket takes. */
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        ERR_clear_error();
        size_t wrote = 0;
        int ret = SSL_write_ex(tc->ssl, iov[i].data, iov[i].len, &wrote);
        if (!tc->handshake_done && SSL_is_init_finished(tc->ssl)) {
            tc->handshake_done = true;
            note_peer(tc);
        }
        if (ret == 1) {
            total += wrote;
            if (wrote < iov[i].len)
                break;
            continue;
        }
        int rc = ssl_status(c, tc, ret, wants, tc->handshake_done ? "TLS write" : "TLS handshake");
        if (total > 0 && rc == MWL_AGAIN)
            break; /* report what went out; the rest is retried */
        return rc;
    }
    *n = total;
    return MWL_OK;
}

static size_t tls_pending(const mwl_conn *c)
{
    tls_conn *tc = mwl_conn_impl(c);
    return tc->fatal ? 0 : (size_t)SSL_pending(tc->ssl);
}

static int tls_shutdown(mwl_conn *c)
{
    tls_conn *tc = mwl_conn_impl(c);
    /* close_notify, best effort (a non-blocking socket may not take it
     * now; the TCP FIN that follows tells the peer as well). */
    if (!tc->fatal && tc->handshake_done) {
        ERR_clear_error();
        (void)SSL_shutdown(tc->ssl);
        ERR_clear_error();
    }
    return mwl_conn_shutdown(tc->tcp);
}

static void tls_close(mwl_conn *c)
{
    tls_conn *tc = mwl_conn_impl(c);
    const mwl_mem *mem = c->mem;
    /* close_notify (RFC 8446 §6.1), best effort and without waiting, if
     * tls_shutdown has not sent it. Besides telling the peer, it keeps the
     * session resumable: OpenSSL marks the session of a connection freed
     * without it "not resumable", and a client's mwl_tls offers that very
     * session object to its next connection, so a client that closed after
     * A-RELEASE-RP did a full handshake every other time (bench/soak). */
    /* Only on a non-blocking socket: a close must never wait for a peer
     * that does not read. */
    if (!tc->fatal && tc->handshake_done && mwl_conn_is_nonblocking(tc->tcp) &&
        !(SSL_get_shutdown(tc->ssl) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        (void)SSL_shutdown(tc->ssl);
        ERR_clear_error();
    }
    SSL_free(tc->ssl);
    mwl_conn_close(tc->tcp);
    tls_release(tc->tls);
    mwl_mem_free(mem, tc);
}

static const char *tls_peer_subject(const mwl_conn *c)
{
    return ((const tls_conn *)mwl_conn_impl(c))->subject;
}

static const char *tls_error_text(const mwl_conn *c)
{
    return ((const tls_conn *)mwl_conn_impl(c))->error;
}

static const mwl_conn_ops tls_ops = {
    .name = "tls",
    .read = tls_read,
    .writev = tls_writev,
    .pending = tls_pending,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .peer_subject = tls_peer_subject,
    .error_text = tls_error_text,
};

int mwl_tls_wrap(mwl_tls *t, mwl_conn *tcp, const char *server_name, mwl_conn **out, mwl_diag *diag)
{
    if (!out) {
        mwl_conn_close(tcp);
        return MWL_E_INVALID;
    }
    *out = NULL;
    if (!t || !tcp) {
        mwl_conn_close(tcp);
        return MWL_E_INVALID;
    }
    const mwl_mem *mem = tcp->mem;
    tls_conn *tc = mwl_mem_calloc(mem, 1, sizeof *tc);
    SSL *ssl = tc ? SSL_new(t->ctx) : NULL;
    BIO *bio = ssl ? BIO_new(conn_bio_method) : NULL;
    if (!bio) {
        SSL_free(ssl);
        mwl_mem_free(mem, tc);
        mwl_conn_close(tcp);
        return MWL_E_NOMEM;
    }
    BIO_set_data(bio, tcp);
    SSL_set_bio(ssl, bio, bio); /* the SSL owns the BIO */
    if (t->server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
        snprintf(tc->server_name, sizeof tc->server_name, "%s", server_name ? server_name : "");
        SSL_set_app_data(ssl, tc);
        CRYPTO_THREAD_read_lock(t->lock);
        if (t->session && tc->server_name[0] && strcmp(t->session_host, tc->server_name) == 0)
            (void)SSL_set_session(ssl, t->session); /* offer resumption */
        CRYPTO_THREAD_unlock(t->lock);
        if (server_name && server_name[0]) {
            /* SNI only for names, not address literals (RFC 6066 §3) */
            bool literal =
                strspn(server_name, "0123456789.") == strlen(server_name) || strchr(server_name, ':');
            if (!literal)
                (void)SSL_set_tlsext_host_name(ssl, server_name);
            /* The chain alone proves only that the CA signed it for some
             * host: the handshake fails unless it names this one. */
            /* subjectAltName only: no fallback to the subject's CN
             * (RFC 6125 §6.4.4), no partial wildcards ("w*.example"). */
            SSL_set_hostflags(ssl,
                              X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (t->verify_name &&
                (literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name) != 1
                         : SSL_set1_host(ssl, server_name) != 1)) {
                SSL_free(ssl);
                mwl_mem_free(mem, tc);
                mwl_conn_close(tcp);
                mwl_diag_set(diag, 0, 0, "TLS: cannot check the server's name against '%.100s'", server_name);
                return MWL_E_INVALID;
            }
        }
    }
    tc->tcp = tcp;
    tc->ssl = ssl;
    int rc = mwl_conn_new(&tls_ops, tc, tcp->fd, tcp->nonblocking, tcp->peer, mem, out);
    if (rc != MWL_OK) {
        SSL_free(ssl);
        mwl_mem_free(mem, tc);
        mwl_conn_close(tcp);
        mwl_diag_set(diag, 0, 0, "TLS: out of memory");
        return rc;
    }
    atomic_fetch_add(&t->refs, 1);
    tc->tls = t;
    return MWL_OK;
}

int mwl_tls_handshake(mwl_conn *c, uint64_t deadline_ms, mwl_diag *diag)
{
    if (!c || c->ops != &tls_ops)
        return MWL_E_INVALID;
    tls_conn *tc = mwl_conn_impl(c);
    for (;;) {
        ERR_clear_error();
        int ret = SSL_do_handshake(tc->ssl);
        if (ret == 1) {
            tc->handshake_done = true;
            note_peer(tc);
            return MWL_OK;
        }
        unsigned wants = 0;
        int rc = ssl_status(c, tc, ret, &wants, "TLS handshake");
        if (rc != MWL_AGAIN) {
            mwl_diag_set(diag, 0, 0, "%s", tc->error[0] ? tc->error : "TLS handshake failed");
            return rc == MWL_E_CLOSED ? MWL_E_CLOSED : MWL_E_IO;
        }
        rc = mwl_conn_wait(tc->tcp, wants, deadline_ms);
        if (rc != MWL_OK) {
            mwl_diag_set(diag, 0, 0, "TLS handshake: %s",
                         rc == MWL_E_TIMEOUT ? "no answer in time" : mwl_status_str(rc));
            return rc;
        }
    }
}

bool mwl_tls_session_reused(const mwl_conn *c)
{
    return c && c->ops == &tls_ops && SSL_session_reused(((const tls_conn *)mwl_conn_impl(c))->ssl) == 1;
}
