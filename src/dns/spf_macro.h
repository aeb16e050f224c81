/* The pure parts of SPF evaluation (RFC 7208): macro expansion (§7) and
 * address-in-network matching for ip4, ip6, a and mx (§5.6, §5.3). */
#ifndef RAWMAIL_DNS_SPF_MACRO_H
#define RAWMAIL_DNS_SPF_MACRO_H

#include <stdbool.h>
#include <stddef.h>

/* What the macro letters stand for in one evaluation (§7.2). */
struct spf_macro_ctx {
	const char *sender;      /* s: local-part@domain (postmaster@HELO if none) */
	const char *domain;      /* d: the domain being checked now */
	const char *helo;        /* h */
	const char *validated;   /* p: NULL gives "unknown" (§7.3 allows it) */
	const char *receiver;    /* r (exp only): NULL gives "unknown" */
	long long now;           /* t (exp only) */
	int family;              /* AF_INET or AF_INET6 (IPv4-mapped already made IPv4) */
	unsigned char ip[16];
};

/* Expands the macro-string ms (already checked by spf_macro_string_ok)
 * into out.  domain_spec: the result names a domain: cut from the left,
 * label by label, to at most 253 octets (§7.3), and a trailing dot
 * dropped.  false with a reason in err if out is too small or the
 * expansion is empty. */
bool spf_macro_expand(const char *ms, const struct spf_macro_ctx *ctx, bool domain_spec,
                      char *out, size_t outlen, char *err, size_t errlen);

/* True if ip (of family) lies in net/prefix of the same family. */
bool spf_cidr_match(int family, const unsigned char *ip, int net_family,
                    const unsigned char *net, unsigned prefix);

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes IPv4 (§5: such an
 * address is evaluated as IPv4); others are unchanged. */
void spf_ip_normalise(int *family, unsigned char ip[16]);

#endif
