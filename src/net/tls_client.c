/* The client side of TLS for outgoing SMTP (see net/tls.h): the context,
 * and the per-connection checks of the server's certificate.
 *
 * The checks run in the context's certificate verification callback
 * (SSL_CTX_set_cert_verify_callback), which replaces OpenSSL's call to
 * X509_verify_cert for the whole chain.  Doing them there rather than
 * after the handshake means a refused certificate aborts the handshake
 * with an alert the peer can log, our Finished is never sent, and there
 * is no window in which a caller could write to an unchecked peer.  The
 * callback finds its connection's struct tls_client_check through ex data
 * on the SSL. */
#include "net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "util/ip_text.h"

#include "util/hostname.h"

/* Ex data slots: the check on each SSL, and on the context what it holds
 * for verification (one of the two tokens below, or NULL: nothing, it was
 * made without verify). */
static CRYPTO_ONCE index_once = CRYPTO_ONCE_STATIC_INIT;
static int ssl_check_index = -1;
static int ctx_anchors_index = -1;
static char anchors_loaded;
static char anchors_system_later;

static void indexes_init(void)
{
	ssl_check_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ctx_anchors_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static bool indexes_ready(void)
{
	return CRYPTO_THREAD_run_once(&index_once, indexes_init) && ssl_check_index >= 0 &&
	       ctx_anchors_index >= 0;
}

/* OpenSSL's reason for the last queued error, the one nearest the cause
 * ("no certificate or crl found"), then the queue cleared. */
static void openssl_reason(char *out, size_t outlen, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	snprintf(out, outlen, "%s", r ? r : fallback);
	ERR_clear_error();
}

static int check_certificate(X509_STORE_CTX *xctx, void *arg);

SSL_CTX *tls_client_ctx_new(bool verify, const char *cafile, char *err, size_t errlen)
{
	if (!indexes_ready()) {
		snprintf(err, errlen, "cannot create TLS client context: no ex data index");
		return NULL;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		char detail[128];
		openssl_reason(detail, sizeof(detail), "unknown error");
		snprintf(err, errlen, "cannot create TLS client context: %s", detail);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	/* Each SSL sets its own mode (tls_client_ssl_new); this default only
	 * matters to an SSL made some other way. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, check_certificate, NULL);
	if (!verify)
		return ctx;
	if (cafile) {
		/* fopen first, for a plain "No such file or directory" or
		 * "Permission denied" from errno; OpenSSL's error queue is for
		 * what it finds inside the file. */
		FILE *f = fopen(cafile, "r");
		if (!f) {
			snprintf(err, errlen, "cannot load CA file %s: %s", cafile, strerror(errno));
			SSL_CTX_free(ctx);
			return NULL;
		}
		fclose(f);
		if (SSL_CTX_load_verify_file(ctx, cafile) != 1) {
			char detail[128];
			openssl_reason(detail, sizeof(detail), "not a PEM certificate bundle");
			snprintf(err, errlen, "cannot load CA file %s: %s", cafile, detail);
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	if (SSL_CTX_set_ex_data(ctx, ctx_anchors_index,
	                        cafile ? &anchors_loaded : &anchors_system_later) != 1) {
		snprintf(err, errlen, "cannot create TLS client context: out of memory");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Copies text into out for a message, at most max octets of it, each
 * octet outside printable ASCII shown as '?': names come from the
 * peer's certificate and must not put a line break or an escape
 * sequence into a log line. */
static size_t append_clean(char *out, size_t outlen, size_t used, const unsigned char *text,
                           size_t len, size_t max)
{
	for (size_t i = 0; i < len && i < max && used + 1 < outlen; i++)
		out[used++] = text[i] > 0x20 && text[i] < 0x7f ? (char)text[i] : '?';
	if (used < outlen)
		out[used] = '\0';
	return used;
}

/* Our own text, as is. */
static size_t append_text(char *out, size_t outlen, size_t used, const char *text)
{
	for (; *text && used + 1 < outlen; text++)
		out[used++] = *text;
	if (used < outlen)
		out[used] = '\0';
	return used;
}

/* The names a certificate holds, for a mismatch message: its DNS and IP
 * SANs ("DNS:a.example, IP:192.0.2.1"), the first few of them; the CN when
 * there is no SAN (OpenSSL then matches the CN); "no names" otherwise. */
static void describe_names(X509 *cert, char *out, size_t outlen)
{
	enum { SHOWN_MAX = 4, NAME_MAX_SHOWN = 80 };
	size_t used = 0;
	int shown = 0, total = 0;
	out[0] = '\0';
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type != GEN_DNS && gn->type != GEN_IPADD)
			continue;
		if (total++ >= SHOWN_MAX)
			continue;
		if (shown++ > 0)
			used = append_text(out, outlen, used, ", ");
		if (gn->type == GEN_DNS) {
			used = append_text(out, outlen, used, "DNS:");
			used = append_clean(out, outlen, used, ASN1_STRING_get0_data(gn->d.dNSName),
			                    (size_t)ASN1_STRING_length(gn->d.dNSName), NAME_MAX_SHOWN);
		} else {
			char ip[INET6_ADDRSTRLEN] = "?";
			int len = ASN1_STRING_length(gn->d.iPAddress);
			const unsigned char *b = ASN1_STRING_get0_data(gn->d.iPAddress);
			if (len == 4 || len == 16)
				inet_ntop(len == 4 ? AF_INET : AF_INET6, b, ip, sizeof(ip));
			used = append_text(out, outlen, used, "IP:");
			used = append_text(out, outlen, used, ip);
		}
	}
	GENERAL_NAMES_free(sans);
	if (total > shown) {
		char more[32];
		snprintf(more, sizeof(more), " and %d more", total - shown);
		used = append_text(out, outlen, used, more);
	}
	if (total > 0)
		return;
	X509_NAME *subject = X509_get_subject_name(cert);
	int at = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
	if (at >= 0) {
		ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
		used = append_text(out, outlen, used, "CN=");
		append_clean(out, outlen, used, ASN1_STRING_get0_data(cn),
		             (size_t)ASN1_STRING_length(cn), NAME_MAX_SHOWN);
		return;
	}
	snprintf(out, outlen, "no names");
}

/* Records why X509_verify_cert refused the chain. */
static void explain_verify_failure(struct tls_client_check *c, X509_STORE_CTX *xctx, X509 *leaf,
                                   const char *fp)
{
	int e = X509_STORE_CTX_get_error(xctx);
	int depth = X509_STORE_CTX_get_error_depth(xctx);
	if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH) {
		char names[200];
		describe_names(leaf, names, sizeof(names));
		snprintf(c->reason, sizeof(c->reason),
		         "certificate name mismatch: wanted %s, certificate has %s (certificate %s)",
		         c->peer, names, fp);
		return;
	}
	/* X509_verify_cert can fail without an error code (out of memory). */
	const char *what = e == X509_V_OK ? "internal error" : X509_verify_cert_error_string(e);
	char where[40] = "";
	if (depth > 0)
		snprintf(where, sizeof(where), ", at chain depth %d", depth);
	snprintf(c->reason, sizeof(c->reason),
	         "certificate verification failed: %s (peer %s, certificate %s%s)", what, c->peer,
	         fp, where);
}

/* OpenSSL calls this instead of X509_verify_cert with the peer's chain;
 * 1 accepts it, 0 ends the handshake with an alert (the SSL's mode is
 * SSL_VERIFY_PEER whenever a check is asked for). */
static int check_certificate(X509_STORE_CTX *xctx, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_client_check *c = ssl ? SSL_get_ex_data(ssl, ssl_check_index) : NULL;
	if (!c)
		return X509_verify_cert(xctx);   /* not ours: OpenSSL's default */
	/* Opportunistic (RFC 7435): any certificate will do, and no time is
	 * spent building a chain nobody looks at. */
	if (!c->verify && c->npins == 0)
		return 1;

	X509 *leaf = X509_STORE_CTX_get0_cert(xctx);
	unsigned char der_fp[TLS_FINGERPRINT_LEN];
	char fp[TLS_FINGERPRINT_TEXT_SIZE];
	if (!leaf || !tls_fingerprint_cert(leaf, der_fp)) {
		c->failed = true;
		snprintf(c->reason, sizeof(c->reason), "cannot read the peer's certificate (peer %s)",
		         c->peer);
		X509_STORE_CTX_set_error(xctx, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	tls_fingerprint_format(der_fp, fp);

	if (c->verify) {
		if (X509_verify_cert(xctx) <= 0) {
			c->failed = true;
			explain_verify_failure(c, xctx, leaf, fp);
			if (X509_STORE_CTX_get_error(xctx) == X509_V_OK)
				X509_STORE_CTX_set_error(xctx, X509_V_ERR_UNSPECIFIED);
			return 0;
		}
		c->verified = true;
	}
	if (c->npins > 0) {
		unsigned char spki_fp[TLS_FINGERPRINT_LEN];
		bool have_spki = tls_fingerprint_spki(leaf, spki_fp);
		for (size_t i = 0; i < c->npins && !c->pinned; i++)
			c->pinned = memcmp(c->pins[i], der_fp, TLS_FINGERPRINT_LEN) == 0 ||
			            (have_spki && memcmp(c->pins[i], spki_fp, TLS_FINGERPRINT_LEN) == 0);
		if (!c->pinned) {
			c->failed = true;
			snprintf(c->reason, sizeof(c->reason),
			         "certificate fingerprint does not match any --tls-fingerprint "
			         "(peer's is %s)",
			         fp);
			/* Sets the alert the peer gets and can log: bad_certificate. */
			X509_STORE_CTX_set_error(xctx, X509_V_ERR_CERT_REJECTED);
			return 0;
		}
	}
	return 1;
}

/* The address to verify when there is no name: the connected one, an
 * IPv4-mapped IPv6 address as the IPv4 address it is (a certificate names
 * it that way).  Returns the length (4 or 16), 0 if addr has none. */
static size_t connected_ip(const struct sockaddr *addr, unsigned char ip[16])
{
	if (addr && addr->sa_family == AF_INET) {
		memcpy(ip, &((const struct sockaddr_in *)(const void *)addr)->sin_addr, 4);
		return 4;
	}
	if (addr && addr->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(ip, a6->s6_addr + 12, 4);
			return 4;
		}
		memcpy(ip, a6->s6_addr, 16);
		return 16;
	}
	return 0;
}

SSL *tls_client_ssl_new(SSL_CTX *ctx, struct tls_client_check *c, char *err, size_t errlen)
{
	c->failed = c->verified = c->pinned = false;
	c->reason[0] = c->name[0] = c->peer[0] = '\0';
	if (!indexes_ready()) {
		snprintf(err, errlen, "cannot start TLS: no ex data index");
		return NULL;
	}
	if (c->npins > 0 && !c->pins) {
		snprintf(err, errlen, "cannot start TLS: pins missing");
		return NULL;
	}
	if (c->verify) {
		void *anchors = SSL_CTX_get_ex_data(ctx, ctx_anchors_index);
		if (anchors == NULL) {
			snprintf(err, errlen, "cannot verify: the TLS context has no trust anchors");
			return NULL;
		}
		if (anchors == &anchors_system_later) {
			if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
				char detail[128];
				openssl_reason(detail, sizeof(detail), "unknown error");
				snprintf(err, errlen, "cannot load the system's CA certificates: %s", detail);
				return NULL;
			}
			/* Only a marker changes: if this fails, the next
			 * connection loads the (already loaded) paths again. */
			(void)SSL_CTX_set_ex_data(ctx, ctx_anchors_index, &anchors_loaded);
		}
	}

	/* Which identity the peer has: a DNS name, an address given as the
	 * name, or (no name) the connected address. */
	unsigned char ip[16];
	size_t iplen = 0;
	bool dns = false;
	if (c->servername) {
		size_t len = strlen(c->servername);
		/* RFC 6066 §3: SNI carries no trailing dot; certificates hold
		 * none either. */
		if (len > 0 && c->servername[len - 1] == '.')
			len--;
		if (len >= sizeof(c->name)) {
			snprintf(err, errlen, "invalid TLS server name (too long)");
			return NULL;
		}
		memcpy(c->name, c->servername, len);
		c->name[len] = '\0';
		int v6;
		if (ip_text_v4(c->name, len, ip)) {
			iplen = 4;
		} else if ((v6 = ip_text_v6(c->name, len, ip)) != 0) {
			iplen = v6 == 4 ? 4 : 16;
		} else if (hostname_syntax_ok(c->name)) {
			dns = true;
		} else {
			char shown[80];
			append_clean(shown, sizeof(shown), 0, (const unsigned char *)c->servername,
			             strlen(c->servername), sizeof(shown));
			snprintf(err, errlen, "invalid TLS server name: %s", shown);
			return NULL;
		}
	} else {
		iplen = connected_ip(c->addr, ip);
		if (iplen == 0 && c->verify) {
			snprintf(err, errlen, "cannot verify: no server name and no IP address");
			return NULL;
		}
	}
	if (dns)
		snprintf(c->peer, sizeof(c->peer), "%s", c->name);
	else if (iplen > 0)
		inet_ntop(iplen == 4 ? AF_INET : AF_INET6, ip, c->peer, sizeof(c->peer));

	SSL *ssl = SSL_new(ctx);
	if (!ssl) {
		snprintf(err, errlen, "cannot start TLS (SSL_new)");
		ERR_clear_error();
		return NULL;
	}
	bool ok = SSL_set_ex_data(ssl, ssl_check_index, c) == 1;
	/* RFC 6066 §3: SNI only for a DNS name, never an address. */
	if (ok && dns)
		ok = SSL_set_tlsext_host_name(ssl, c->name) == 1;
	if (ok && c->verify) {
		if (dns) {
			ok = SSL_set1_host(ssl, c->name) == 1;
		} else {
			ok = X509_VERIFY_PARAM_set1_ip(SSL_get0_param(ssl), ip, iplen) == 1;
		}
	}
	if (!ok) {
		snprintf(err, errlen, "cannot start TLS (setting the server name)");
		ERR_clear_error();
		SSL_free(ssl);
		return NULL;
	}
	/* SSL_VERIFY_PEER makes check_certificate's verdict binding; without
	 * a check the verdict is always yes anyway. */
	SSL_set_verify(ssl, c->verify || c->npins > 0 ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return ssl;
}

bool tls_client_check_passed(const struct tls_client_check *c)
{
	return !c->failed && (!c->verify || c->verified) && (c->npins == 0 || c->pinned);
}

void tls_client_describe(SSL *ssl, const struct tls_client_check *c, char *out, size_t outlen)
{
	char proto[96];
	tls_describe(ssl, proto, sizeof(proto));
	X509 *peer = SSL_get0_peer_certificate(ssl);
	unsigned char der_fp[TLS_FINGERPRINT_LEN];
	if (!peer || !tls_fingerprint_cert(peer, der_fp)) {
		snprintf(out, outlen, "%s, no peer certificate", proto);
		return;
	}
	char fp[TLS_FINGERPRINT_TEXT_SIZE];
	tls_fingerprint_format(der_fp, fp);
	const char *how = c->verified && c->pinned ? "verified and pinned"
	                  : c->verified            ? "verified"
	                  : c->pinned              ? "pinned"
	                                           : "not verified";
	snprintf(out, outlen, "%s, peer certificate %s, %s", proto, fp, how);
}

SSL_CTX *tls_client_lazy_get(struct tls_client_lazy *l, char *err, size_t errlen)
{
	if (!l->ctx && !l->failed) {
		l->ctx = tls_client_ctx_new(l->verify, l->cafile, l->err, sizeof(l->err));
		l->failed = l->ctx == NULL;
	}
	if (!l->ctx)
		snprintf(err, errlen, "%s", l->err);
	return l->ctx;
}

void tls_client_lazy_free(struct tls_client_lazy *l)
{
	if (l->ctx)
		SSL_CTX_free(l->ctx);
	l->ctx = NULL;
}
