/* The HTTPS certificate: see https_cert.h. */
#include "http/https_cert.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/file.h"
#include "base/mem.h"

#define CHAIN_MAX 16u
#define PEM_MAX (1024u * 1024u)

struct https_cert {
    gnutls_pcert_st chain[CHAIN_MAX];
    unsigned count;
    gnutls_privkey_t key;
    char about[200];
    https_cert *replaced; /* the one this took over from, kept (see install) */
};

/* The process's certificate (one HTTPS listener a process). */
static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static bool slot_taken;     /* under slot_mu */
static https_cert *serving; /* under slot_mu */

static bool has_pem_begin(const uint8_t *text, size_t len)
{
    static const char begin[] = "-----BEGIN ";
    for (size_t i = 0; i + sizeof begin - 1 <= len; i++)
        if (memcmp(text + i, begin, sizeof begin - 1) == 0)
            return true;
    return false;
}

/* A PEM file's bytes; the key file's are wiped when freed (wipe_free). */
static int read_pem(const char *what, const char *path, gnutls_datum_t *out, mwl_diag *diag)
{
    uint8_t *text = NULL;
    size_t len = 0;
    mwl_diag d;
    int rc = mwl_file_read(path, NULL, PEM_MAX, &text, &len, &d);
    if (rc != MWL_OK) {
        mwl_diag_set(diag, 0, 0, "%s: %s: %s", what, path, d.msg);
        return rc == MWL_E_NOMEM ? rc : MWL_E_IO;
    }
    /* Said here, naming the key, rather than as GnuTLS's vaguer error; a
     * NUL inside would cut what GnuTLS sees. */
    if (memchr(text, 0, len) || !has_pem_begin(text, len)) {
        mwl_diag_set(diag, 0, 0, "%s: %s: not a PEM file", what, path);
        memset(text, 0, len);
        mwl_mem_free(NULL, text);
        return MWL_E_INVALID;
    }
    out->data = text;
    out->size = (unsigned)len;
    return MWL_OK;
}

static void wipe_free(gnutls_datum_t *d)
{
    if (d->data) {
        memset(d->data, 0, d->size);
        mwl_mem_free(NULL, d->data);
    }
    d->data = NULL;
    d->size = 0;
}

/* The SHA-256 key ID of a public key, for comparing two. */
static bool key_id(gnutls_pubkey_t pub, unsigned char id[32])
{
    size_t n = 32;
    return gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, id, &n) == 0 && n == 32;
}

static bool key_belongs(const https_cert *c)
{
    gnutls_pubkey_t pub;
    if (gnutls_pubkey_init(&pub) < 0)
        return false;
    unsigned char a[32], b[32];
    bool same = gnutls_pubkey_import_privkey(pub, c->key, 0, 0) == 0 && key_id(pub, a) &&
                key_id(c->chain[0].pubkey, b) && memcmp(a, b, 32) == 0;
    gnutls_pubkey_deinit(pub);
    return same;
}

static void describe(https_cert *c)
{
    snprintf(c->about, sizeof c->about, "a certificate");
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return;
    if (gnutls_x509_crt_import(crt, &c->chain[0].cert, GNUTLS_X509_FMT_DER) == 0) {
        char dn[160];
        size_t n = sizeof dn;
        if (gnutls_x509_crt_get_dn(crt, dn, &n) != 0)
            snprintf(dn, sizeof dn, "?");
        time_t until = gnutls_x509_crt_get_expiration_time(crt);
        struct tm tm;
        char day[16] = "?";
        if (until != (time_t)-1 && gmtime_r(&until, &tm))
            strftime(day, sizeof day, "%Y-%m-%d", &tm);
        snprintf(c->about, sizeof c->about, "%s, valid until %s", dn, day);
    }
    gnutls_x509_crt_deinit(crt);
}

int https_cert_load(const char *cert_path, const char *key_path, https_cert **out, mwl_diag *diag)
{
    *out = NULL;
    https_cert *c = calloc(1, sizeof *c);
    if (!c)
        return MWL_E_NOMEM;
    gnutls_datum_t cert_pem = {NULL, 0}, key_pem = {NULL, 0};
    int rc = read_pem("http-tls-cert", cert_path, &cert_pem, diag);
    if (rc == MWL_OK)
        rc = read_pem("http-tls-key", key_path, &key_pem, diag);
    if (rc == MWL_OK) {
        c->count = CHAIN_MAX;
        /* Sorted: a chain file with the intermediate first still has the
         * server's certificate in chain[0], as GnuTLS's own loader does. */
        int g = gnutls_pcert_list_import_x509_raw(c->chain, &c->count, &cert_pem, GNUTLS_X509_FMT_PEM,
                                                  GNUTLS_X509_CRT_LIST_SORT);
        if (g < 0 || c->count == 0) {
            c->count = 0;
            mwl_diag_set(diag, 0, 0, "http-tls-cert: %s: not a certificate chain GnuTLS reads (%s)",
                         cert_path, gnutls_strerror(g));
            rc = MWL_E_INVALID;
        }
    }
    if (rc == MWL_OK) {
        int g = gnutls_privkey_init(&c->key);
        if (g == 0)
            g = gnutls_privkey_import_x509_raw(c->key, &key_pem, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (g < 0) {
            mwl_diag_set(diag, 0, 0, "http-tls-key: %s: not an unencrypted private key GnuTLS reads (%s)",
                         key_path, gnutls_strerror(g));
            rc = MWL_E_INVALID;
        } else if (!key_belongs(c)) {
            mwl_diag_set(diag, 0, 0,
                         "http-tls-cert, http-tls-key: the key %s does not belong to the certificate %s",
                         key_path, cert_path);
            rc = MWL_E_INVALID;
        }
    }
    wipe_free(&cert_pem);
    wipe_free(&key_pem);
    if (rc != MWL_OK) {
        https_cert_free(c);
        return rc;
    }
    describe(c);
    *out = c;
    return MWL_OK;
}

void https_cert_free(https_cert *c)
{
    while (c) {
        https_cert *next = c->replaced;
        for (unsigned i = 0; i < c->count; i++)
            gnutls_pcert_deinit(&c->chain[i]);
        if (c->key)
            gnutls_privkey_deinit(c->key);
        free(c);
        c = next;
    }
}

const char *https_cert_describe(const https_cert *c)
{
    return c->about;
}

int https_cert_install(https_cert *c, mwl_diag *diag)
{
    pthread_mutex_lock(&slot_mu);
    if (slot_taken) {
        pthread_mutex_unlock(&slot_mu);
        mwl_diag_set(diag, 0, 0, "http-tls-cert: one HTTPS listener a process");
        return MWL_E_UNSUPPORTED;
    }
    slot_taken = true;
    serving = c;
    pthread_mutex_unlock(&slot_mu);
    return MWL_OK;
}

void https_cert_replace(https_cert *c)
{
    pthread_mutex_lock(&slot_mu);
    /* A handshake that took the old chain may still be writing it: the
     * old one is kept until the daemon has stopped. */
    c->replaced = serving;
    serving = c;
    pthread_mutex_unlock(&slot_mu);
}

static bool same_cert(const https_cert *a, const https_cert *b)
{
    if (a->count != b->count)
        return false;
    for (unsigned i = 0; i < a->count; i++) {
        const gnutls_datum_t *x = &a->chain[i].cert, *y = &b->chain[i].cert;
        if (x->size != y->size || memcmp(x->data, y->data, x->size) != 0)
            return false;
    }
    /* The key belongs to chain[0] (checked at load): the same certificate
     * has the same public key, and so the same private key. */
    return true;
}

bool https_cert_is_serving(const https_cert *c)
{
    pthread_mutex_lock(&slot_mu);
    bool same = serving && same_cert(serving, c);
    pthread_mutex_unlock(&slot_mu);
    return same;
}

void https_cert_release(void)
{
    pthread_mutex_lock(&slot_mu);
    https_cert *c = serving;
    serving = NULL;
    slot_taken = false;
    pthread_mutex_unlock(&slot_mu);
    https_cert_free(c);
}

/* GnuTLS asks for the server's certificate at each handshake. */
static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                    unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)session;
    (void)req_ca_dn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    pthread_mutex_lock(&slot_mu);
    https_cert *c = serving;
    pthread_mutex_unlock(&slot_mu);
    if (!c)
        return -1; /* no certificate: the handshake fails */
    *pcert = c->chain;
    *pcert_length = c->count;
    *pkey = c->key;
    return 0;
}

gnutls_certificate_retrieve_function2 *https_cert_callback(void)
{
    return retrieve;
}
