/* Trusted networks (`--trusted-network CIDR`, repeatable; Postfix's
 * mynetworks): clients in them may relay without AUTH.  Pure: text in,
 * a match on a client's struct sockaddr out.
 *
 * Accepted text, with SP/HTAB around it ignored:
 *   192.0.2.0/24      a dotted quad (strict: no leading zeros, since
 *                     "010.0.0.0" is octal to inet_aton) and a prefix
 *   2001:db8::/32     IPv6 (as inet_pton reads it; hex groups may have
 *                     leading zeros), prefix 0..128, any multiple of 1
 *   [2001:db8::]/32   the same in brackets, as Postfix writes IPv6 in
 *                     mynetworks ([::1]/128); brackets around IPv4 too
 *   192.0.2.7, ::1    a bare address: /32 or /128
 *   ::ffff:192.0.2.0/120   an IPv4-mapped network (prefix >= 96) is the
 *                     IPv4 network 192.0.2.0/24
 * Refused, with a message naming the value: anything else (a space
 * inside, a zone "%eth0", "1.2.3", a prefix past 32 or 128, an empty
 * prefix or one with a leading zero), host bits set past the prefix
 * ("192.168.1.5/24 has host bits set; did you mean 192.168.1.0/24?" —
 * Postfix only warns, but such a value is most often a typo for a smaller
 * or larger network than meant), and a prefix of /0 (every address: that
 * makes an open relay, never what is meant on a LAN).
 *
 * Matching: an IPv4 client matches IPv4 networks, also when it arrives
 * on an IPv6 socket as ::ffff:a.b.c.d; an IPv6 client matches IPv6
 * networks.  IPv6 networks never match IPv4 clients (as in Postfix, where
 * an IPv4 client is always an IPv4 address). */
#ifndef RAWMAIL_SERVER_NETWORKS_H
#define RAWMAIL_SERVER_NETWORKS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Room for the longest text networks_format writes (IPv6 "/128", NUL). */
#define NETWORKS_TEXT_MAX 52

struct networks_entry {
	unsigned char family;     /* AF_INET or AF_INET6 */
	unsigned char prefix;     /* 1..32 or 1..128 */
	unsigned char addr[16];   /* IPv4: the first 4; host bits are 0 */
};

/* Zero-initialized is empty (matches nothing). */
struct networks {
	struct networks_entry *entries;
	size_t count;             /* at most NETWORKS_MAX (util/limits.h) */
};

/* Parses text and adds its network.  false with a message in err (naming
 * the value, escaped) when the text is refused, when NETWORKS_MAX are
 * there already, or when memory ran out; n is then unchanged.  A network
 * given twice is kept once. */
bool networks_add(struct networks *n, const char *text, char *err, size_t errlen);
/* True when sa (AF_INET or AF_INET6; any other family: false) is in one of
 * the networks. */
bool networks_match(const struct networks *n, const struct sockaddr *sa);
/* An entry (n->entries[i]) as text, "192.0.2.0/24" or "2001:db8::/32",
 * for logs; always NUL-terminated (NETWORKS_TEXT_MAX is enough). */
void networks_format(const struct networks_entry *e, char *buf, size_t len);
void networks_free(struct networks *n);

#endif
