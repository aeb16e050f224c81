/* The client TLS context for outgoing SMTP (see net/tls.h). */
#include "net/tls.h"

#include <stdio.h>

#include <openssl/err.h>

SSL_CTX *tls_client_ctx_new(char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		unsigned long e = ERR_get_error();
		char detail[256] = "unknown error";
		if (e)
			ERR_error_string_n(e, detail, sizeof(detail));
		snprintf(err, errlen, "cannot create TLS client context: %s", detail);
		ERR_clear_error();
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	/* Opportunistic encryption: any certificate is accepted, so a peer
	 * with a self-signed or expired one still gets encrypted mail rather
	 * than plaintext.  Verification and pinning build on this context as
	 * separate modes; they are the next step of rawmail send. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}
