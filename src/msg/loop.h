/* Mail forwarding loops (issue 9): what a message's header section says
 * about where it has been, so that local delivery can refuse a message
 * that is coming round again instead of forwarding it once more.
 *
 * Two signs, both from Postfix's local(8) and cleanup(8):
 * - a Delivered-To: field naming the address being delivered: local
 *   delivery and every forward through an alias add one (RFC 9228), so a
 *   message that already carries it for this recipient has been here;
 * - more Received: fields than MSG_HOPS_MAX (RFC 5321 §6.3).
 * Either is a permanent failure with status 5.4.6 (RFC 3463 §3.5,
 * "routing loop detected").
 *
 * Pure: the message bytes as the queue holds them (CRLF or LF line
 * ends); only the header section is read, up to its first empty line. */
#ifndef RAWMAIL_MSG_LOOP_H
#define RAWMAIL_MSG_LOOP_H

#include <stdbool.h>
#include <stddef.h>

/* How many Received: fields the header section has. */
size_t msg_loop_received_count(const char *data, size_t len);

/* Whether a Delivered-To: field's value is addr (compared without case,
 * surrounding white space and folding ignored). */
bool msg_loop_delivered_to(const char *data, size_t len, const char *addr);

#endif
