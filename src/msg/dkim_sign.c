/* DKIM signing (RFC 6376 §5): the body hash, the header fields chosen and
 * canonicalised, the DKIM-Signature field built and signed with
 * rsa-sha256 or ed25519-sha256 (RFC 8463). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "msg/dkim.h"

#include "msg/address_list.h"
#include "msg/dkim_internal.h"

/* RFC 6376 §5.4.1's list, less the ones that change in transit or that
 * rawmail does not write (Resent-*, List-*, Sender, Reply-To are kept
 * out so a mailing list may add them without breaking the signature). */
const char *const dkim_sign_headers[] = {
	"from", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references",
	"mime-version", "content-type", "content-transfer-encoding",
};
const size_t dkim_sign_headers_count = sizeof(dkim_sign_headers) / sizeof(dkim_sign_headers[0]);

/* The header fields canonicalised for hashing are at most this long
 * together (the header section a message may have is smaller). */
#define DKIM_HEADER_DATA_MAX (4u * 1024 * 1024)
/* Largest signature: RSA 16384 bits. */
#define DKIM_SIG_MAX 2048

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* The field starting at msg[i] (a line start in the header section):
 * its length up to and including the last line end of its folding. */
static size_t field_len(const char *msg, size_t i, size_t hdr_end)
{
	size_t j = i;
	for (;;) {
		while (j < hdr_end && msg[j] != '\n')
			j++;
		if (j < hdr_end)
			j++;
		if (j >= hdr_end || !is_wsp(msg[j]))
			return j - i;
	}
}

/* Whether the field at f is named name (case-insensitive, RFC 5322 §1.2.2). */
static bool field_named(const char *f, size_t flen, const char *name)
{
	size_t n = strlen(name);
	if (flen < n || strncasecmp(f, name, n) != 0)
		return false;
	size_t i = n;
	while (i < flen && is_wsp(f[i]))
		i++;
	return i < flen && f[i] == ':';
}

/* The instance of name that is k-th from the bottom (k = 0 the last).
 * false when there are not that many. */
static bool field_find(const char *msg, size_t hdr_end, const char *name, size_t k,
                       const char **out, size_t *outlen)
{
	size_t count = 0;
	for (int pass = 0; pass < 2; pass++) {
		size_t seen = 0;
		size_t i = 0;
		while (i < hdr_end) {
			if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < hdr_end && msg[i + 1] == '\n'))
				break;  /* the empty line */
			size_t flen = field_len(msg, i, hdr_end);
			if (field_named(msg + i, flen, name)) {
				if (pass == 1 && seen == count - 1 - k) {
					*out = msg + i;
					*outlen = flen;
					return true;
				}
				seen++;
			}
			i += flen;
		}
		count = seen;
		if (k >= count)
			return false;
	}
	return false;
}

/* How many fields are named name: one pass (a header section of many
 * fields must not cost a pass per field). */
static size_t field_count(const char *msg, size_t hdr_end, const char *name)
{
	size_t n = 0, i = 0;
	while (i < hdr_end) {
		if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < hdr_end && msg[i + 1] == '\n'))
			break;  /* the empty line */
		size_t flen = field_len(msg, i, hdr_end);
		n += field_named(msg + i, flen, name);
		i += flen;
	}
	return n;
}

void dkim_from_find(const char *msg, size_t len, struct dkim_from *out)
{
	memset(out, 0, sizeof(*out));
	size_t hdr_end = dkim_body_offset(msg, len);
	const char *first = NULL;
	size_t firstlen = 0, i = 0;
	while (i < hdr_end) {
		if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < hdr_end && msg[i + 1] == '\n'))
			break;  /* the empty line */
		size_t flen = field_len(msg, i, hdr_end);
		if (field_named(msg + i, flen, "from") && out->fields++ == 0) {
			first = msg + i;
			firstlen = flen;
		}
		i += flen;
	}
	if (!first)
		return;
	const char *colon = memchr(first, ':', firstlen);
	struct buf v;
	buf_init(&v, firstlen + 1);
	for (const char *p = colon + 1; p < first + firstlen; p++)
		if (*p != '\r' && *p != '\n' && buf_append(&v, p, 1) < 0)
			break;
	struct msg_recipients r;
	struct msg_error err = { 0 };
	msg_recipients_init(&r, 16);
	if (v.len && msg_address_list_parse(v.data, v.len, &r, &err) == 0 && r.count) {
		out->addresses = r.count;
		if (strlen(r.addrs[0]) < sizeof(out->address))
			memcpy(out->address, r.addrs[0], strlen(r.addrs[0]) + 1);
	}
	msg_recipients_free(&r);
	buf_free(&v);
}

bool dkim_domain_covers(const char *d, const char *domain)
{
	size_t dl = strlen(d), fl = strlen(domain);
	if (fl == dl)
		return strcasecmp(d, domain) == 0;
	return fl > dl && domain[fl - dl - 1] == '.' && strcasecmp(domain + fl - dl, d) == 0;
}

/* The signature over data[0..len): rsa-sha256 signs SHA-256 with PKCS#1
 * v1.5 (RFC 6376 §3.3.1); ed25519-sha256 signs the SHA-256 of the data
 * with PureEdDSA (RFC 8463 §3). */
static int data_sign(const struct dkim_key *key, const char *data, size_t len,
                     unsigned char *sig, size_t *siglen)
{
	int ok = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -1;
	if (key->alg == DKIM_ALG_RSA_SHA256) {
		ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
		     EVP_DigestSignUpdate(ctx, data, len) == 1 &&
		     EVP_DigestSignFinal(ctx, NULL, siglen) == 1 && *siglen <= DKIM_SIG_MAX &&
		     EVP_DigestSignFinal(ctx, sig, siglen) == 1;
	} else {
		unsigned char hash[EVP_MAX_MD_SIZE];
		unsigned hlen = 0;
		ok = EVP_Digest(data, len, hash, &hlen, EVP_sha256(), NULL) == 1 &&
		     EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
		     EVP_DigestSign(ctx, sig, siglen, hash, hlen) == 1;
	}
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

int dkim_signature_compute(const struct dkim_key *key, const char *msg, size_t len,
                           const char *const *names, size_t n, const char *sig_field,
                           size_t sig_len, struct buf *b64, char *err, size_t errlen)
{
	size_t hdr_end = dkim_body_offset(msg, len);
	struct buf data;
	buf_init(&data, DKIM_HEADER_DATA_MAX);
	int rc = -1;
	/* §5.4.2: each name takes the next instance from the bottom. */
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(names[j], names[i]) == 0)
				k++;
		const char *f;
		size_t flen;
		if (field_find(msg, hdr_end, names[i], k, &f, &flen) &&
		    dkim_canon_header_relaxed(f, flen, true, &data) < 0) {
			snprintf(err, errlen, "the header section is too large to sign");
			goto out;
		}
	}
	/* §3.7: the DKIM-Signature field itself, b= empty, no final CRLF. */
	if (dkim_canon_header_relaxed(sig_field, sig_len, false, &data) < 0) {
		snprintf(err, errlen, "the header section is too large to sign");
		goto out;
	}
	unsigned char sig[DKIM_SIG_MAX];
	size_t siglen = sizeof(sig);
	ERR_clear_error();
	if (data_sign(key, data.data, data.len, sig, &siglen) < 0) {
		unsigned long e = ERR_peek_last_error();
		snprintf(err, errlen, "signing failed (%s)",
		         e && ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "OpenSSL");
		ERR_clear_error();
		goto out;
	}
	if (dkim_b64_append(b64, sig, siglen) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	buf_free(&data);
	return rc;
}

/* A d= or s= value: a DNS name of letters, digits, '-', '_' and dots
 * (RFC 6376 §3.5 sub-domain / selector), nothing that would end the tag. */
bool dkim_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > DKIM_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		          c == '-' || c == '_' || (c == '.' && s[i + 1] != '.');
		if (!ok)
			return false;
	}
	return true;
}

/* Folding: appends text after a space, or on a new line ("CR LF SP")
 * when it would pass the column limit. */
static int fold_append(struct buf *out, size_t *col, const char *text, bool space)
{
	size_t n = strlen(text);
	if (*col + (space ? 1 : 0) + n > DKIM_FOLD_COLUMNS) {
		if (buf_append(out, "\r\n ", 3) < 0)
			return -1;
		*col = 1;
	} else if (space) {
		if (buf_append(out, " ", 1) < 0)
			return -1;
		(*col)++;
	}
	if (buf_append(out, text, n) < 0)
		return -1;
	*col += n;
	return 0;
}

int dkim_sign(const struct dkim_key *key, const char *domain, const char *selector, time_t t,
              const char *msg, size_t len, struct buf *out, char *err, size_t errlen)
{
	if (!dkim_name_ok(domain)) {
		snprintf(err, errlen, "DKIM domain '%s' is not a domain name", domain);
		return -1;
	}
	if (!dkim_name_ok(selector)) {
		snprintf(err, errlen, "DKIM selector '%s' is not a DNS label", selector);
		return -1;
	}
	size_t body = dkim_body_offset(msg, len);
	size_t nfrom = field_count(msg, body, "from");
	if (nfrom == 0) {
		snprintf(err, errlen, "the message has no From field to sign (RFC 6376 §5.4)");
		return -1;
	}
	int rc = -1;
	struct buf canon, field, b64;
	buf_init(&canon, 2 * (len - body) + 16);
	buf_init(&field, 64 * 1024);
	buf_init(&b64, 4 * DKIM_SIG_MAX);
	const char *names[64];
	size_t n = 0;

	/* bh=: the SHA-256 of the relaxed body (§3.7). */
	unsigned char hash[EVP_MAX_MD_SIZE];
	unsigned hlen = 0;
	if (dkim_canon_body_relaxed(msg + body, len - body, &canon) < 0 ||
	    EVP_Digest(canon.data ? canon.data : "", canon.len, hash, &hlen, EVP_sha256(), NULL) != 1 ||
	    dkim_b64_append(&b64, hash, hlen) < 0) {
		snprintf(err, errlen, "cannot hash the body (out of memory)");
		goto out;
	}
	/* h=: each listed field as often as it occurs; From once more. */
	for (size_t i = 0; i < dkim_sign_headers_count; i++) {
		const char *name = dkim_sign_headers[i];
		size_t c = field_count(msg, body, name);
		if (strcmp(name, "from") == 0)
			c++;
		for (; c > 0 && n < sizeof(names) / sizeof(names[0]); c--)
			names[n++] = name;
	}

	size_t col = 0;
	char text[DKIM_NAME_MAX + 64];
	bool ok = fold_append(&field, &col, "DKIM-Signature:", false) == 0;
	snprintf(text, sizeof(text), "a=%s;",
	         key->alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256");
	ok = ok && fold_append(&field, &col, "v=1;", true) == 0 &&
	     fold_append(&field, &col, text, true) == 0 &&
	     fold_append(&field, &col, "c=relaxed/relaxed;", true) == 0;
	snprintf(text, sizeof(text), "d=%s;", domain);
	ok = ok && fold_append(&field, &col, text, true) == 0;
	snprintf(text, sizeof(text), "s=%s;", selector);
	ok = ok && fold_append(&field, &col, text, true) == 0;
	snprintf(text, sizeof(text), "t=%lld;", (long long)t);
	ok = ok && fold_append(&field, &col, text, true) == 0;
	/* h= may fold before any colon (§3.5: *FWS ":" *FWS). */
	for (size_t i = 0; ok && i < n; i++) {
		snprintf(text, sizeof(text), "%s%s%s", i == 0 ? "h=" : ":", names[i],
		         i + 1 == n ? ";" : "");
		ok = fold_append(&field, &col, text, i == 0) == 0;
	}
	snprintf(text, sizeof(text), "bh=%s;", b64.data);
	ok = ok && fold_append(&field, &col, text, true) == 0 &&
	     fold_append(&field, &col, "b=", true) == 0;
	if (!ok) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	buf_reset(&b64);
	if (dkim_signature_compute(key, msg, len, names, n, field.data, field.len, &b64, err,
	                           errlen) < 0)
		goto out;
	/* b=: the base64 in pieces that fill each line (FWS may stand
	 * anywhere in it, §3.5). */
	for (size_t i = 0; i < b64.len;) {
		if (col >= DKIM_FOLD_COLUMNS) {
			if (buf_append(&field, "\r\n ", 3) < 0)
				goto nomem;
			col = 1;
		}
		size_t take = DKIM_FOLD_COLUMNS - col;
		if (take > b64.len - i)
			take = b64.len - i;
		if (buf_append(&field, b64.data + i, take) < 0)
			goto nomem;
		col += take;
		i += take;
	}
	if (buf_append(&field, "\r\n", 2) < 0 || buf_append(out, field.data, field.len) < 0)
		goto nomem;
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	buf_free(&canon);
	buf_free(&field);
	buf_free(&b64);
	return rc;
}
