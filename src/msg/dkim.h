/* DKIM signatures (RFC 6376) for outgoing mail: relaxed/relaxed
 * canonicalisation, rsa-sha256 and ed25519-sha256 (RFC 8463) through
 * OpenSSL 3's EVP, the key records published in DNS.  No I/O but
 * dkim_key_load (one file read): message bytes in, a header field out,
 * so any caller (rawmail send, the queue, later submission) signs a
 * buffer the same way.
 *
 * Messages are the bytes as the queue stores them (CR LF line ends), but
 * LF line ends are taken too: a bare LF ends a line as CR LF does, and
 * both canonicalise to CR LF (RFC 6376 §3.4.4: line ends are CRLF). */
#ifndef RAWMAIL_MSG_DKIM_H
#define RAWMAIL_MSG_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util/buf.h"
#include "util/limits.h"

/* The longest p= value (base64, white space removed) a key record may
 * have: an 8192-bit RSA key's SubjectPublicKeyInfo is ~1 400 characters. */
#define DKIM_RECORD_P_MAX 2048
/* The longest domain (d=) and selector (s=): a DNS name (RFC 1035 §2.3.4). */
#define DKIM_NAME_MAX 253
/* Smallest RSA key accepted (RFC 8301 §3.2: verifiers MUST NOT accept
 * keys under 1024 bits) and the size under which a key is warned about
 * (RFC 8301 §3.2: signers SHOULD use at least 2048 bits). */
#define DKIM_RSA_BITS_MIN 1024
#define DKIM_RSA_BITS_GOOD 2048
/* Columns of the DKIM-Signature field's lines (RFC 5322 §2.1.1: 78). */
#define DKIM_FOLD_COLUMNS 78

enum dkim_alg {
	DKIM_ALG_RSA_SHA256,      /* k=rsa */
	DKIM_ALG_ED25519_SHA256,  /* k=ed25519, RFC 8463 */
};

/* A private key, loaded or generated. */
struct dkim_key;

/* Reads a PEM private key (PKCS#8 "PRIVATE KEY" or "RSA PRIVATE KEY")
 * from path.  0: *out is the key; 1: the same, and err holds a warning
 * (an RSA key under 2048 bits, or else a file group or others may read);
 * -1: refused, err says why naming the file
 * (cannot be read, not PEM, not RSA or Ed25519, RSA under 1024 bits). */
int dkim_key_load(const char *path, struct dkim_key **out, char *err, size_t errlen);
/* Reads the same from memory (pem[0..len)); name is used in messages. */
int dkim_key_parse(const char *pem, size_t len, const char *name, struct dkim_key **out,
                   char *err, size_t errlen);
/* A new key: RSA of DKIM_RSA_BITS_GOOD bits or Ed25519.  0 or -1 (err). */
int dkim_key_generate(enum dkim_alg alg, struct dkim_key **out, char *err, size_t errlen);
void dkim_key_free(struct dkim_key *key);
enum dkim_alg dkim_key_alg(const struct dkim_key *key);
/* The k= value of the key's records: "rsa" or "ed25519". */
const char *dkim_key_type_name(const struct dkim_key *key);
/* Appends the private key as PEM (PKCS#8), what keygen writes.  0 or -1. */
int dkim_key_pem(const struct dkim_key *key, struct buf *out);
/* Appends the p= value of the key's record, base64 without white space:
 * RSA: the DER SubjectPublicKeyInfo (RFC 6376 §3.6.1); Ed25519: the raw
 * 32-octet public key (RFC 8463 §4.2).  0 or -1. */
int dkim_key_public_b64(const struct dkim_key *key, struct buf *out);

/* Relaxed canonicalisation of one header field (RFC 6376 §3.4.2):
 * field[0..len) is "Name: value" with its folding and optionally its
 * final line end; appends "name:value" CR LF (name lower case, unfolded,
 * white space runs one SP, none around the colon or at the end).  With
 * crlf false the final CR LF is left off (the DKIM-Signature field being
 * signed, §3.7).  0, or -1 (the buffer's maximum). */
int dkim_canon_header_relaxed(const char *field, size_t len, bool crlf, struct buf *out);
/* Relaxed canonicalisation of a body (RFC 6376 §3.4.4): white space runs
 * are one SP, white space at line ends and empty lines at the end are
 * removed, lines end with CR LF (a last line without a line end gets
 * one).  An empty body (or one of empty lines only) is empty (§3.4.4
 * adds CRLF only to a non-empty body; dkimpy and OpenDKIM agree).  0 or
 * -1. */
int dkim_canon_body_relaxed(const char *body, size_t len, struct buf *out);
/* Where the body starts in msg[0..len): after the first empty line (CR LF
 * CR LF or LF LF); len when there is none (all header). */
size_t dkim_body_offset(const char *msg, size_t len);

/* The headers rawmail signs (RFC 6376 §5.4.1's SHOULD list, lower case),
 * each that is present once per occurrence; "from" once more than it
 * occurs (over-signing, §8.15: a From added later breaks the signature). */
extern const char *const dkim_sign_headers[];
extern const size_t dkim_sign_headers_count;

/* The signature (base64, appended to b64) of msg with the DKIM-Signature
 * field sig_field[0..sig_len) whose b= tag is last and empty (§3.7):
 * names[0..n) are the h= names, each taking the next instance from the
 * bottom of the header section (§5.4.2; one not present adds nothing).
 * This is dkim_sign's core, and the unit test's way to the RFC 8463
 * example's own field.  0, or -1 with err. */
int dkim_signature_compute(const struct dkim_key *key, const char *msg, size_t len,
                           const char *const *names, size_t n, const char *sig_field,
                           size_t sig_len, struct buf *b64, char *err, size_t errlen);

/* The From field a signature is for (RFC 5322 §3.6.2: exactly one From;
 * RFC 6376 §5.4: From is always signed).  Fills out with the number of
 * From fields in msg's header section, the number of addresses in the
 * first one (0: none readable) and that field's first address ("" when
 * none).  Callers decide what a second field or address means. */
struct dkim_from {
	size_t fields;
	size_t addresses;
	char address[SMTP_PATH_MAX + 1];
};
void dkim_from_find(const char *msg, size_t len, struct dkim_from *out);

/* Whether d= domain d covers the From domain: the same, or a parent of it
 * (the relaxed alignment DMARC checks), without case. */
bool dkim_domain_covers(const char *d, const char *domain);

/* Signs msg[0..len) for domain (d=) with selector (s=) at time t (t=):
 * appends the whole "DKIM-Signature: ..." field, folded under 78 columns,
 * ending CR LF, to out; the caller puts it in front of the message.
 * 0, or -1 with err (bad domain or selector, no From field, OpenSSL). */
/* A d= or s= value rawmail writes: letters, digits, '-', '_' and inner
 * dots, at most DKIM_NAME_MAX octets (RFC 6376 §3.5). */
bool dkim_name_ok(const char *s);

int dkim_sign(const struct dkim_key *key, const char *domain, const char *selector, time_t t,
              const char *msg, size_t len, struct buf *out, char *err, size_t errlen);

/* A DKIM key record, the TXT record at SELECTOR._domainkey.DOMAIN
 * (RFC 6376 §3.6.1). */
struct dkim_record {
	enum dkim_alg k;        /* k=, rsa when absent */
	bool revoked;           /* p= empty (§3.6.1) */
	bool testing;           /* t=y */
	bool strict;            /* t=s: i= must not be a subdomain */
	char p[DKIM_RECORD_P_MAX + 1];  /* p=, white space removed */
};
/* Strict parse of a key record's text (TXT strings joined): a tag-list
 * (§3.2: tag names ALPHA *(ALPHA/DIGIT/"_"), each once, values of VALCHAR
 * with inner white space, ";" separated, a trailing ";" allowed); v= if
 * present first and "DKIM1"; h= if present must list sha256; k= rsa or
 * ed25519; s= if present "*" or "email"; p= required, valid base64 (an
 * Ed25519 key 32 octets).  Unknown tags are ignored (§3.2).  0, or -1
 * with err saying what is wrong. */
int dkim_record_parse(const char *txt, size_t len, struct dkim_record *r, char *err,
                      size_t errlen);
/* A key record in zone-file syntax, as `rawmail dkim keygen` prints it
 * and `rawmail check` shows it in a fix: "SELECTOR._domainkey.DOMAIN. IN
 * TXT ( "..." "..." )", the text in strings of at most 255 octets (RFC
 * 1035 §3.3.14) inside parentheses (§5.1); appended to out without a
 * line end.  0, or -1 (the buffer's maximum). */
int dkim_record_zone_line(const char *domain, const char *selector, const char *text,
                          struct buf *out);

#endif
