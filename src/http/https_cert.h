/* The HTTPS listener's certificate (http-tls-cert, http-tls-key): read,
 * checked, and handed to each TLS handshake by libmicrohttpd's certificate
 * callback, so that a reload (SIGHUP) can put a renewed certificate in
 * place without restarting the HTTP daemon or dropping a connection.
 *
 * libmicrohttpd's callback carries no pointer of ours, so the certificate
 * served is the process's: one HTTPS listener a process
 * (https_cert_install refuses a second). Only this module (https_cert.c
 * and this header) includes GnuTLS. */
#ifndef MWL_HTTP_HTTPS_CERT_H
#define MWL_HTTP_HTTPS_CERT_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>

#include "base/status.h"

typedef struct https_cert https_cert;

/* Reads and checks a PEM certificate chain (the server's certificate
 * first, at most 16) and its unencrypted PEM private key: each must parse,
 * and the key must belong to the first certificate. MWL_OK; MWL_E_IO (a
 * file cannot be read), MWL_E_INVALID (diag names the key(s) and why),
 * MWL_E_NOMEM. */
MWL_MUST_CHECK int https_cert_load(const char *cert_path, const char *key_path, https_cert **out,
                                   mwl_diag *diag);
void https_cert_free(https_cert *c);
/* Details for the log: the first certificate's subject and end of
 * validity, e.g. "CN=mwl.example.org, valid until 2027-12-04". */
const char *https_cert_describe(const https_cert *c);

/* Makes `c` the process's certificate, taking the process's one HTTPS
 * slot: MWL_E_UNSUPPORTED when another listener holds it. */
MWL_MUST_CHECK int https_cert_install(https_cert *c, mwl_diag *diag);
/* A reload: `c` is served from the next handshake on. The one it replaces
 * stays allocated until https_cert_release, since a handshake may still be
 * using it (a few KiB a renewal; a reload with the same certificate
 * replaces nothing, see https_cert_is_serving). */
void https_cert_replace(https_cert *c);
/* True when `c` is the certificate being served (the same chain and
 * key): a reload without a renewal. */
bool https_cert_is_serving(const https_cert *c);
/* Frees every certificate installed and frees the slot. Only after the
 * daemon has stopped (no handshake can run). */
void https_cert_release(void);

/* The callback for MHD_OPTION_HTTPS_CERT_CALLBACK: hands GnuTLS the
 * installed certificate at each handshake. */
gnutls_certificate_retrieve_function2 *https_cert_callback(void);

#endif
