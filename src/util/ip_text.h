/* Address-literal text to binary (RFC 5321 §4.1.3), shared by the server's
 * address parser and the sender's destination classifier, so "which texts
 * are an IP address" has one answer in rawmail. */
#ifndef RAWMAIL_UTIL_IP_TEXT_H
#define RAWMAIL_UTIL_IP_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#define IP_TEXT_V4_MAX 15  /* "255.255.255.255" */
#define IP_TEXT_V6_MAX 45  /* the longest text inet_ntop can give */

/* A strict dotted quad: four 1-3 digit numbers <= 255, no leading zero
 * ("01.2.3.4" would be octal to inet_aton, so one text could name two
 * addresses).  out gets the 4 octets. */
bool ip_text_v4(const char *text, size_t len, unsigned char out[4]);

/* IPv6-addr text (hex digits, ':' and '.', as inet_pton takes it: no zone,
 * no brackets).  Returns 0 if invalid, 6 with 16 octets in out, or 4 with
 * the last 4 octets in out for an IPv4-mapped address (::ffff:a.b.c.d):
 * the two spellings of one address compare equal (DESIGN.md). */
int ip_text_v6(const char *text, size_t len, unsigned char out[16]);

#endif
