/* Recipients read from a message's To, Cc and Bcc fields (sendmail -t):
 * RFC 5322 §3.4 address lists, and the bounded list they go into. */
#ifndef RAWMAIL_MSG_ADDRESS_LIST_H
#define RAWMAIL_MSG_ADDRESS_LIST_H

#include <stddef.h>

#include "msg/error.h"
#include "util/buf.h"

/* A bounded list of distinct addresses, each a NUL-terminated addr-spec
 * as written (quoted local parts keep their quotes, comments and folding
 * white space removed), at most SMTP_PATH_MAX octets, never holding a
 * control octet.  They are candidates: the caller validates each as an
 * RFC 5321 path (smtp/address.h) before using it. */
struct msg_recipients {
	char **addrs;
	size_t count;
	size_t max;      /* more than max distinct addresses is MSG_ERR_ADDRESS */
};

void msg_recipients_init(struct msg_recipients *r, size_t max);
void msg_recipients_free(struct msg_recipients *r);
/* Adds addr[0..len) unless it is already there (exact octets). */
int msg_recipients_add(struct msg_recipients *r, const char *addr, size_t len,
                       struct msg_error *err);

/* Reads an unfolded field body (what follows "To:") as an address list
 * and adds every mailbox's address to r.  Understands display names,
 * quoted strings (commas inside them), comments (nested, RFC 5322
 * §3.2.2), angle addresses with an obsolete route (<@a,@b:u@c>, route
 * dropped, §4.4), groups ("undisclosed-recipients:;", "team: a@x, b@y;"),
 * domain literals and empty list elements (§4.4 obs-addr-list).
 * MSG_ERR_ADDRESS for what cannot be read safely: an unterminated quote,
 * comment, literal or angle address, text after an angle address, a
 * phrase with no address, a control octet, an address too long. */
int msg_address_list_parse(const char *value, size_t len, struct msg_recipients *r,
                           struct msg_error *err);

/* Postfix's append_at_myorigin (cleanup(8)): appends the field body
 * value[0..len) (what follows "To:", folding and line breaks included)
 * to out, with "@domain" after every addr-spec that has no domain: in
 * plain mailboxes ("root (Cron Daemon)"), angle addresses (after an
 * obsolete route too) and groups.  Everything else is kept byte for
 * byte.  A value that cannot be read safely as an address list (what
 * msg_address_list_parse refuses, or a domain literal as a local part)
 * is appended unchanged.  MSG_QUALIFY_* (out holds the value either way),
 * or -1 when out's maximum is reached (out as before the call). */
enum {
	MSG_QUALIFY_SAME = 0,        /* every address had a domain (or none) */
	MSG_QUALIFY_CHANGED = 1,
	MSG_QUALIFY_UNREADABLE = 2,  /* not an address list: left as written */
};
int msg_address_list_qualify(const char *value, size_t len, const char *domain,
                             struct buf *out);

#endif
