#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static void tls_error(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char detail[256] = "";
	if (e)
		ERR_error_string_n(e, detail, sizeof(detail));
	else if (errno)
		snprintf(detail, sizeof(detail), "%s", strerror(errno));
	snprintf(err, errlen, "%s %s: %s", what, file ? file : "", detail);
	ERR_clear_error();
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		tls_error(err, errlen, "cannot create TLS context", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Resumption by stateless tickets only (RFC 5077, RFC 8446 §4.6.1);
	 * the smtp process keeps no session cache, the client holds the
	 * state, and OpenSSL issues tickets with the cache off
	 * (test_tls_resume.py).  Server CPU per handshake (DESIGN.md, "TLS in
	 * the server"): a resumed TLS 1.2 one costs a quarter of a full one,
	 * a resumed TLS 1.3 one ~11% less (it still does ECDHE; OpenSSL 3.0's
	 * own overhead dominates the saved signature).  Issuing the ticket
	 * adds ~8% to a full handshake; in TLS 1.3 that is what the former
	 * SSL_OP_NO_TICKET already cost, as OpenSSL then sent two stateful
	 * tickets that no cache could ever resume.  One TLS 1.3 ticket, not
	 * two: a mail client makes one connection at a time.
	 * The ticket keys are random, made by SSL_CTX_new, and live as long as
	 * this context: made in the parent, inherited by each smtp process,
	 * never written anywhere.  A reload (SIGHUP) or a restart makes a new
	 * context, so older tickets are refused and those clients make one
	 * full handshake.  Nothing rotates the keys in between: keys read out
	 * of a process would decrypt recorded TLS 1.2 sessions that got a
	 * ticket (it holds their master secret); a reload ends that exposure. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_error(err, errlen, "cannot load certificate", cert_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		tls_error(err, errlen, "cannot load private key", key_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, errlen, "private key does not match certificate", key_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Writes a PEM file durably: the key and certificate are made once and
 * must survive a crash right after, or the next start makes a new pair. */
static bool write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return false;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return false;
	}
	bool ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1
	              : PEM_write_X509(f, cert) == 1;
	ok = fflush(f) == 0 && fsync(fd) == 0 && ok;
	return fclose(f) == 0 && ok;
}

static X509 *make_cert(EVP_PKEY *key, const char *hostname)
{
	X509 *x = X509_new();
	if (!x)
		return NULL;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	X509V3_CTX v3;
	X509_EXTENSION *ext = NULL;
	char san[300];
	bool ok = X509_set_version(x, 2) == 1;
	if (ok && RAND_bytes(serial, sizeof(serial)) == 1) {
		serial[0] &= 0x7f;
		bn = BN_bin2bn(serial, sizeof(serial), NULL);
		ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	} else {
		ok = false;
	}
	BN_free(bn);
	/* Ten years: it is pinned or trusted on first use, not verified
	 * against a CA, so a short lifetime would only break pins. */
	ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
	ok = ok && X509_set_pubkey(x, key) == 1;
	X509_NAME *name = X509_get_subject_name(x);
	ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                                      (const unsigned char *)hostname, -1, -1, 0) == 1;
	ok = ok && X509_set_issuer_name(x, name) == 1;
	snprintf(san, sizeof(san), "DNS:%s", hostname);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (ok) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		ok = ext && X509_add_ext(x, ext, -1) == 1;
		X509_EXTENSION_free(ext);
	}
	ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

bool tls_selfsigned_ensure(const char *dir, const char *hostname, char *cert_path,
                           char *key_path, size_t pathlen, char *err, size_t errlen)
{
	snprintf(cert_path, pathlen, "%s/cert.pem", dir);
	snprintf(key_path, pathlen, "%s/key.pem", dir);
	if (access(cert_path, R_OK) == 0 && access(key_path, R_OK) == 0)
		return true;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return false;
	}
	EVP_PKEY *key = EVP_EC_gen("P-256");
	if (!key) {
		tls_error(err, errlen, "cannot generate key", NULL);
		return false;
	}
	X509 *cert = make_cert(key, hostname);
	if (!cert) {
		tls_error(err, errlen, "cannot create certificate", NULL);
		EVP_PKEY_free(key);
		return false;
	}
	/* Key first: a crash between the two leaves no certificate, so the
	 * next start makes a new pair rather than a mismatched one. */
	bool ok = write_pem(key_path, 0600, key, NULL) && write_pem(cert_path, 0644, NULL, cert);
	if (!ok)
		snprintf(err, errlen, "cannot write %s: %s", dir, strerror(errno));
	X509_free(cert);
	EVP_PKEY_free(key);
	return ok;
}

void tls_describe(SSL *ssl, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}
