/* Every protocol limit of rawmail in one table, with the rule it comes from.
 * Parsers, the server and (later) the client all read them from here. */
#ifndef RAWMAIL_UTIL_LIMITS_H
#define RAWMAIL_UTIL_LIMITS_H

/* RFC 5321 §4.5.3.1.1: local part, at most 64 octets. */
#define SMTP_LOCAL_PART_MAX 64
/* RFC 5321 §4.5.3.1.2: domain, at most 255 octets. */
#define SMTP_DOMAIN_MAX 255
/* RFC 5321 §4.5.3.1.3: path including the angle brackets, 256 octets. */
#define SMTP_PATH_MAX 256
/* RFC 5321 §4.5.3.1.4: command line 512 octets with CRLF; §4.5.3.1 lets
 * extensions add to it (SIZE=, BODY=, SMTPUTF8, AUTH=...).  Postfix allows
 * 2048; we accept the same and refuse anything longer with 500 5.5.2. */
#define SMTP_COMMAND_LINE_MAX 2048
/* RFC 5321 §4.5.3.1.5: reply line 512 octets with CRLF. */
#define SMTP_REPLY_LINE_MAX 512
/* RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients. */
#define SMTP_RECIPIENTS_MIN 100
#define SMTP_RECIPIENTS_DEFAULT 1000
/* The most recipients one message can have: the store's BEGIN frame carries
 * at most FRAME_RCPTS_MAX (src/store/frame.h, checked where the setting is
 * parsed), so --max-recipients above it is refused at start-up. */
#define SMTP_RECIPIENTS_MAX 10000
/* Default message size: 25 MiB, announced as SIZE 26214400 (RFC 1870). */
#define SMTP_MESSAGE_SIZE_DEFAULT (25u * 1024u * 1024u)
/* RFC 5322 §2.1.1: a line is at most 998 octets plus CRLF.  The server
 * stores longer lines intact (RFC 5321 §4.5.3.1 asks receivers not to
 * limit them); the sender never emits one. */
#define RFC5322_LINE_MAX 998
/* Delivery status notifications (RFC 3464, src/msg/dsn.c): at most this
 * much of the original header section is returned (cut before the field
 * that would pass it), so a 25 MiB header section does not make a 25 MiB
 * bounce; and at most this much of one recipient's reply is quoted (a
 * longer one ends with "..."). */
#define DSN_HEADERS_MAX (64u * 1024u)
#define DSN_DIAGNOSTIC_MAX (8u * 1024u)

/* SASL AUTH exchanges (RFC 4954, smtp/sasl.h).  §4: a server should
 * accept a base64 response line of 12288 octets; longer ones get 500
 * 5.5.6.  RFC 4616 §2: a server MUST accept identities and passwords of
 * up to 255 octets; names stay at that, passwords (passphrases, tokens)
 * may be four times longer.  The AUTH command line itself stays under
 * SMTP_COMMAND_LINE_MAX (an initial response too long for it is refused
 * as the command parser says). */
#define SMTP_AUTH_LINE_MAX 12288
/* Failed AUTH exchanges a connection may make before 421 (issue 10). */
#define SMTP_AUTH_FAILURES_DEFAULT 3
#define SMTP_AUTH_NAME_MAX 255
#define SMTP_AUTH_PASSWORD_MAX 1024

/* RFC 5321 §4.5.3.2: server timeouts (seconds). */
#define SMTP_TIMEOUT_SERVER_COMMAND 300 /* §4.5.3.2.7: at least 5 minutes */
#define SMTP_TIMEOUT_SERVER_DATA 300    /* between data blocks */
#define SMTP_TIMEOUT_OVERLOAD 10        /* Postfix's stress mode uses 10 s */
#define SMTP_TIMEOUT_SHUTDOWN_DATA 5    /* a DATA in progress at SIGTERM */

/* A whole-phase deadline besides the per-read timeout: a DATA stream (or a
 * BDAT chunk) may last its timeout plus one second per this many octets
 * received, so a client that trickles a byte per read cannot hold a slot
 * for ever (Postfix's smtpd_min_data_rate, same default).  Under overload
 * a session in a transaction slower than this (after SMTP_TIMEOUT_OVERLOAD
 * seconds of grace) may be closed to admit a new client. */
#define SMTP_MIN_DATA_RATE_DEFAULT 500 /* octets per second */

/* Connections. */
#define SMTP_CONNECTIONS_DEFAULT 10000
#define SMTP_CONNECTIONS_PER_IP_DEFAULT 50
/* max-connections-per-ip counts one network per client: an IPv4 address,
 * or an IPv6 /64, the smallest network an IPv6 customer is given (RFC 6177
 * §2; a /128 would let one host take every slot). */
#define SMTP_PER_IP_PREFIX_IPV4_DEFAULT 32
#define SMTP_PER_IP_PREFIX_IPV6_DEFAULT 64
/* New Maildirs created by mail, per hour (issue 8, item 4): one client
 * address (IPv6: its /64) and all clients together.  Existing Maildirs and
 * --mailbox lists are not counted. */
#define SMTP_NEW_MAILBOXES_PER_IP_DEFAULT 20
#define SMTP_NEW_MAILBOXES_DEFAULT 200
#define SMTP_NEW_MAILBOXES_MAX 100000
/* The fraction of the connection limit past which the server is in overload
 * mode (shorter timeouts, oldest idle pre-MAIL sessions closed first). */
#define SMTP_OVERLOAD_PERCENT 80

/* Messages up to this size stay in memory until their batch is committed;
 * larger ones are streamed to their file as they arrive (DESIGN.md). */
#define STORE_MEMORY_MESSAGE_MAX (256u * 1024u)
/* All messages together (issue 8, item 5): past this sum the largest ones
 * stream to their tmp/ files early, so that thousands of sessions stalled
 * in DATA cannot grow the store by 256 KiB each. */
#define STORE_MEMORY_TOTAL_MAX (32u * 1024u * 1024u)
/* A message relayed through the store (issue 10) is held whole in memory
 * with CR LF line endings until it is queued (queue_spool_enqueue takes a
 * buffer): at most this many octets, received text included; a larger one
 * fails with 451.  Half of it is the largest content that always fits
 * (every LF may become CR LF): the smtp process refuses larger relayed
 * messages itself. */
#define STORE_RELAY_MESSAGE_MAX (128u * 1024u * 1024u)
/* The same with its DKIM-Signature fields in front (issue 11): at most
 * STORE_DKIM_KEYS_MAX of them, each well under 8 KiB (an 8192-bit RSA
 * signature is 1 366 base64 octets). */
#define STORE_DKIM_KEYS_MAX 8
#define STORE_RELAY_SIGNED_MAX (STORE_RELAY_MESSAGE_MAX + STORE_DKIM_KEYS_MAX * 8192u)

/* RFC 5321 §6.3: a message with more Received: fields than this is
 * taken to be looping (5.4.6); "a large rejection threshold, normally at
 * least 100" (Postfix's hopcount_limit is 50). */
#define MSG_HOPS_MAX 100

/* The aliases file (/etc/aliases format, msg/aliases.h): its size, one
 * logical line (continuations included), entries, targets of one name
 * after expansion, and how deep names may nest.  sendmail and Postfix
 * have no fixed limits; these are far beyond any real file and keep a
 * hostile or broken one from using unbounded memory or time. */
#define ALIASES_FILE_MAX (4u * 1024u * 1024u)
#define ALIASES_LINE_MAX (64u * 1024u)
#define ALIASES_ENTRIES_MAX 10000
#define ALIASES_TARGETS_MAX 1000
#define ALIASES_DEPTH_MAX 16

/* The users file of authenticated submission (issue 10, auth/users.h):
 * its size, one line, users, senders of one user.  Dovecot's and
 * Postfix's passwd-file lookups have no fixed limits; these are far
 * beyond a real file and bound a broken one.  A name is a login (an
 * address at most, RFC 5321 §4.5.3.1.3's path less its brackets; 128 is
 * plenty for both); a crypt(3) string of yescrypt or SHA-512 is under 130
 * octets.  RFC 4616 §2: a PLAIN server must take a password of up to
 * 255 octets; `rawmail passwd` sets none longer, so every password it
 * sets can be given through AUTH PLAIN and LOGIN. */
#define AUTH_USERS_FILE_MAX (1024u * 1024u)
#define AUTH_USERS_LINE_MAX 4096u
#define AUTH_USERS_MAX 10000
#define AUTH_USER_NAME_MAX 128
#define AUTH_HASH_MAX 256
#define AUTH_USER_SENDERS_MAX 100
#define AUTH_PASSWORD_MAX 255

/* Submission's missing Date and Message-ID (RFC 6409 §8.2, §8.3,
 * smtp/header_fill.h): the octets of a header line's beginning held back
 * while it is not yet known whether the line is a field ("name:") or the
 * first line of a body that has no empty line before it.  A field name
 * (with any WSP before its colon, RFC 5322 §4.5.8) longer than this is
 * taken as a field, never as the body's start: real names are far
 * shorter, and a long line of name octets counted as a field only moves
 * the insertion further down the header section. */
#define SMTP_HEADER_FILL_HOLD_MAX 128

/* Trusted networks (--trusted-network, server/networks.h): Postfix's
 * mynetworks has no fixed limit; a LAN needs a handful, and a bound keeps
 * the linear match per connection cheap. */
#define NETWORKS_MAX 256

/* DNS records of one answer kept by dns/rr.h (TXT strings, addresses, MX
 * or PTR names): more is a hostile or broken zone; SPF (RFC 7208 §4.6.4)
 * looks at no more than 10 MX or PTR names anyway. */
#define DNS_RR_ITEMS_MAX 64
/* One TXT record's strings joined (RFC 7208 §3.3): a 64 KiB message
 * bounds it; a sane SPF record fits one UDP answer (§3.4: 450 octets
 * advised). */
#define DNS_TXT_RECORD_MAX 4096

/* SPF (RFC 7208, dns/spf.h).  §4.6.4: at most 10 mechanisms and
 * modifiers that cause DNS lookups (include, a, mx, ptr, exists,
 * redirect) in one evaluation, at most 2 of whose lookups may come back
 * empty (NXDOMAIN or no data, "void"), and at most 10 names from one MX
 * or PTR answer looked at.  A record of more terms than SPF_TERMS_MAX, or
 * a macro-string longer than SPF_MACRO_MAX, is a permerror: no real
 * record comes near either.  Includes nest at most SPF_DEPTH_MAX deep
 * (the 10-lookup limit bounds them too; this bounds the frame stack). */
#define SPF_LOOKUPS_MAX 10
#define SPF_VOID_LOOKUPS_MAX 2
#define SPF_MX_NAMES_MAX 10
#define SPF_PTR_NAMES_MAX 10
#define SPF_TERMS_MAX 64
#define SPF_MACRO_MAX 253
#define SPF_DEPTH_MAX 12

/* Reading received MIME messages (msg/mime_read.h, for the MQTT event of
 * issue 12).  RFC 2046 §5.1 bounds neither nesting nor the number of
 * parts, and the message is hostile.  Every multipart level scans its
 * body once for its boundary, so nesting multiplies the work: a multipart
 * deeper than MIME_DEPTH_MAX is not descended (its leaves are not seen),
 * which keeps a walk within MIME_DEPTH_MAX passes over the message.  At
 * most MIME_PARTS_MAX parts (leaves and multiparts) are visited; the rest
 * of a 10,000-part message is not looked at.  An RFC 2231 §3 parameter is
 * read from at most MIME_PARAM_SECTIONS_MAX sections (name*0..name*63).
 * A charset name longer than MIME_CHARSET_NAME_MAX is unknown (RFC 2978
 * §2.3: registered names are at most 40 characters). */
#define MIME_DEPTH_MAX 16
#define MIME_PARTS_MAX 1000
#define MIME_PARAM_SECTIONS_MAX 64
#define MIME_CHARSET_NAME_MAX 40
/* The MQTT event (mqtt/event.h): a header field's decoded value (subject,
 * header_from, date, message_id) and an attachment's name are cut, at a
 * UTF-8 character boundary, to this many octets, so that a 1 MiB Subject
 * does not make a 1 MiB event.  The text part has its own cap
 * (MQTT_EVENT_TEXT_MAX, 64 KiB, from the issue). */
#define MQTT_EVENT_FIELD_MAX (16u * 1024u)
/* MQTT send requests (src/mqtt/request.c, issue 12).  Recipients of one
 * request, after duplicates are dropped: a notification goes to a few
 * people, and 100 is what RFC 5321 §4.5.3.1.8 says every server takes in
 * one transaction, so a request never needs splitting at a peer. */
#define MQTT_REQUEST_RECIPIENTS_MAX 100
/* Attachments of one JSON request: a camera sends a few snapshots; each
 * is a MIME part with its headers, so their number is bounded besides
 * the size limit. */
#define MQTT_REQUEST_ATTACHMENTS_MAX 100
/* The request's "id", echoed in every result: a correlation id, not
 * data (a longer one is refused and not echoed). */
#define MQTT_REQUEST_ID_MAX 256

#endif
