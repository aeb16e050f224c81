/* TLS with OpenSSL 3: the server context for STARTTLS, the self-signed
 * certificate that makes STARTTLS work out of the box, and the client
 * side rawmail send uses (tls_client.c): context, per-connection checks
 * (verification, pinning, SNI). */
#ifndef RAWMAIL_NET_TLS_H
#define RAWMAIL_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <sys/socket.h>

#include <openssl/ssl.h>

#include "net/fingerprint.h"

/* A server context: TLS 1.2 or newer, the certificate chain and key from
 * PEM files, SSL_MODE_RELEASE_BUFFERS (idle TLS sessions keep no buffers),
 * SSL_OP_IGNORE_UNEXPECTED_EOF (libevent 2.1.12 predates OpenSSL 3), and
 * session resumption by stateless tickets (one per TLS 1.3 handshake), no
 * server-side session cache.
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

/* ---- client side (src/net/tls_client.c): outgoing SMTP ---- */

/* A client context: TLS 1.2 or newer, SSL_MODE_RELEASE_BUFFERS,
 * SSL_OP_IGNORE_UNEXPECTED_EOF.  Whether and how a peer's certificate is
 * checked is chosen per connection (struct tls_client_check); the context
 * only holds the trust anchors for verification:
 *   - verify false: none are loaded (cafile is ignored), so making the
 *     context costs no file reading; connections on it can be
 *     opportunistic (RFC 7435) or pinned, not verified;
 *   - verify true, cafile set: that PEM bundle is loaded now, an error
 *     naming the file if it is unreadable or holds no certificate;
 *   - verify true, cafile NULL: the system's default store
 *     (SSL_CTX_set_default_verify_paths, which honours SSL_CERT_FILE and
 *     SSL_CERT_DIR), loaded by the first tls_client_ssl_new that verifies,
 *     not here: reading Debian's bundle takes 20-40 ms, and a run of rawmail
 *     send that never verifies a peer should not pay it at start.
 * NULL on error, with a message for people in err. */
SSL_CTX *tls_client_ctx_new(bool verify, const char *cafile, char *err, size_t errlen);

/* A client context made at the first STARTTLS, not at start: OpenSSL's
 * initialisation and a context cost ~5 ms, most of a plain `rawmail send`
 * to a server that offers no STARTTLS.  The caller fills verify and
 * cafile, leaves the rest zero, and frees it with tls_client_lazy_free. */
struct tls_client_lazy {
	bool verify;
	const char *cafile;
	SSL_CTX *ctx;      /* private */
	bool failed;
	char err[256];
};
/* The context, made on the first call.  NULL (with the reason in err)
 * when it cannot be made; later calls fail the same way. */
SSL_CTX *tls_client_lazy_get(struct tls_client_lazy *l, char *err, size_t errlen);
void tls_client_lazy_free(struct tls_client_lazy *l);

#define TLS_CLIENT_REASON_SIZE 512
#define TLS_CLIENT_NAME_SIZE 254       /* a DNS name's text (253) + NUL */

/* What to check of the server's certificate on one connection (the
 * caller fills the first part), and what was found (written by
 * tls_client_ssl_new and during the handshake).  It must stay in place
 * until the SSL is freed: the handshake writes into it. */
struct tls_client_check {
	/* The server's DNS name: sent as SNI (RFC 6066 §3) and, with verify,
	 * the name the certificate must hold (RFC 6125, OpenSSL's matching:
	 * SAN dNSName, else CN when there is no DNS SAN; wildcards in the
	 * leftmost label).  One trailing dot is dropped.  An IPv4 or IPv6
	 * address text is taken as an address: no SNI (RFC 6066 forbids
	 * literals there), and with verify the certificate must hold it as a
	 * SAN iPAddress.  NULL: no SNI; with verify the connected address
	 * (addr) is what the certificate must hold. */
	const char *servername;
	const struct sockaddr *addr;   /* the connected address */
	/* The chain must lead to one of the context's trust anchors, be
	 * valid now, and name the peer (servername or address). */
	bool verify;
	/* SHA-256 pins (net/fingerprint.h): the leaf must match one, by its
	 * DER or by its SubjectPublicKeyInfo.  Without verify the pin is the
	 * whole authentication, as DANE-EE (RFC 7672 §3.1.1): chain, dates
	 * and names are not looked at.  With verify both must hold. */
	const unsigned char (*pins)[TLS_FINGERPRINT_LEN];
	size_t npins;

	/* results */
	bool failed;                   /* a check refused the certificate */
	bool verified;                 /* chain and name verified */
	bool pinned;                   /* the leaf matched a pin */
	char reason[TLS_CLIENT_REASON_SIZE]; /* why, when failed: for people */
	/* private */
	char name[TLS_CLIENT_NAME_SIZE];     /* servername without its dot */
	char peer[TLS_CLIENT_NAME_SIZE];     /* the peer as messages name it */
};

/* A client SSL for one connection with check's settings applied: SNI,
 * the name or address to verify, the verification mode.  The checks run
 * inside the handshake: a refused certificate ends it with an alert, so
 * nothing of the session (not even EHLO) goes to an unauthenticated peer;
 * check->failed and check->reason then say why.  NULL on error (invalid
 * servername, verify on a context made without it, out of memory), with
 * a message in err. */
SSL *tls_client_ssl_new(SSL_CTX *ctx, struct tls_client_check *check, char *err, size_t errlen);

/* After a completed handshake: true if every check asked for passed.  A
 * completed handshake already implies it; callers ask anyway so that a
 * check skipped by some OpenSSL path (session resumption, say) fails
 * closed rather than open. */
bool tls_client_check_passed(const struct tls_client_check *check);

/* For the -v transcript, after the handshake: "TLSv1.3 TLS_AES_256_GCM_SHA384,
 * peer certificate SHA256:<hex>, verified" (or "pinned", "verified and
 * pinned", "not verified"). */
void tls_client_describe(SSL *ssl, const struct tls_client_check *check, char *out,
                         size_t outlen);

#endif
