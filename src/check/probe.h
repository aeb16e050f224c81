/* One SMTP probe (check/ internal): connect to one address within the
 * timeout, read the greeting, EHLO, and when STARTTLS is offered run the
 * TLS handshake to see its version and the certificate's fingerprint.
 * Sends no mail: QUIT is never needed since nothing was started, the
 * connection is just closed. */
#ifndef RAWMAIL_CHECK_PROBE_H
#define RAWMAIL_CHECK_PROBE_H

#include <stdbool.h>
#include <openssl/ssl.h>

#include "net/fingerprint.h"

struct event_base;

enum probe_outcome {
	PROBE_OK,          /* greeted 220 and answered EHLO */
	PROBE_REFUSED,     /* connection refused (RST) */
	PROBE_UNREACHABLE, /* no route, or another connect error */
	PROBE_TIMEOUT,     /* the connection never came up */
	PROBE_SILENT,      /* connected, never greeted within the timeout */
	PROBE_STALLED,     /* greeted, never answered EHLO within the timeout */
	PROBE_CLOSED,      /* closed before greeting or during EHLO */
	PROBE_REJECTED,    /* greeted or answered EHLO with 4xx/5xx */
	PROBE_BAD_REPLY,   /* a reply that is not SMTP */
};

struct probe_report {
	enum probe_outcome outcome;
	int code;               /* the greeting's (or EHLO's) code */
	char enhanced[16];
	char greeting[512];     /* first line of the greeting, escaped */
	char reply[1024];       /* a refusal's text (lines joined), escaped */
	char error[128];        /* errno text of a failed connect */
	bool starttls;          /* EHLO offered STARTTLS */
	bool tls_ok;            /* the handshake completed */
	bool tls_stalled;       /* STARTTLS accepted but the handshake timed out or failed */
	char tls_version[32];
	char tls_cipher[64];
	char fingerprint[TLS_FINGERPRINT_TEXT_SIZE];
	bool revealed;          /* EHLO's reply named our address */
	int revealed_family;
	unsigned char revealed_addr[16];
};

struct probe;
typedef void (*probe_cb)(void *arg, const struct probe_report *rep);

/* Starts a probe of family/addr:port; helo is the EHLO name; sni the
 * server name to send in TLS (NULL for an IP literal); tls may be NULL
 * (no handshake then).  cb runs once, from the loop.  NULL if it could
 * not start. */
struct probe *probe_start(struct event_base *base, SSL_CTX *tls, int family,
                          const unsigned char *addr, unsigned port, const char *helo,
                          const char *sni, unsigned timeout_ms, probe_cb cb, void *arg);

#endif
