/* TLS with OpenSSL 3: the server context for STARTTLS, the self-signed
 * certificate that makes STARTTLS work out of the box, and the client
 * context rawmail send uses (tls_client.c). */
#ifndef RAWMAIL_NET_TLS_H
#define RAWMAIL_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* A server context: TLS 1.2 or newer, the certificate chain and key from
 * PEM files, SSL_MODE_RELEASE_BUFFERS (idle TLS sessions keep no buffers)
 * and SSL_OP_IGNORE_UNEXPECTED_EOF (libevent 2.1.12 predates OpenSSL 3).
 * NULL on error, with a message for people in err. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* Makes sure dir holds a self-signed ECDSA P-256 certificate for hostname
 * (cert.pem, key.pem, key mode 0600), creating it the first time; later
 * runs keep using the same one, so clients that pinned it stay happy.
 * Writes the two paths.  false on error, with err set. */
bool tls_selfsigned_ensure(const char *dir, const char *hostname, char *cert_path,
                           char *key_path, size_t pathlen, char *err, size_t errlen);

/* "TLSv1.3" and the cipher name of an established connection, for
 * Received: headers and logs. */
void tls_describe(SSL *ssl, char *out, size_t outlen);

/* A client context for outgoing SMTP (src/net/tls_client.c): TLS 1.2 or
 * newer, SSL_MODE_RELEASE_BUFFERS, SSL_OP_IGNORE_UNEXPECTED_EOF.  The peer's
 * certificate is not verified: this is opportunistic STARTTLS (RFC 7435),
 * which protects against passive listeners only.  Verification against
 * the system's CAs and certificate pinning are the next step and will be
 * modes chosen by the caller.  NULL on error, with a message in err. */
SSL_CTX *tls_client_ctx_new(char *err, size_t errlen);

#endif
