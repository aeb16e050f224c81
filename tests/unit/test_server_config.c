/* Settings: flags and file share one setter; errors name what was wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns/resolver.h"
#include "server/config.h"
#include "util/limits.h"
#include "server/ipcount.h"
#include "server/received.h"
#include "util/limits.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static void test_values(void **state)
{
	struct serve_config c;
	char err[256];
	config_init(&c);
	assert_int_equal(c.max_message_size, 25u * 1024 * 1024);
	assert_true(config_set(&c, CONFIG_FLAG, "max-message-size", "10M", err, sizeof(err)));
	assert_int_equal(c.max_message_size, 10u * 1024 * 1024);
	assert_false(config_set(&c, CONFIG_FLAG, "max-message-size", "10X", err, sizeof(err)));
	assert_non_null(strstr(err, "max-message-size"));
	assert_false(config_set(&c, CONFIG_FLAG, "max-message-size", "99999999999999999999999", err,
	                        sizeof(err)));
	/* RFC 5321 §4.5.3.1.8: at least 100 recipients. */
	assert_false(config_set(&c, CONFIG_FLAG, "max-recipients", "99", err, sizeof(err)));
	assert_non_null(strstr(err, "100"));
	assert_true(config_set(&c, CONFIG_FLAG, "max-recipients", "100", err, sizeof(err)));
	/* Issue 8 item 12: the store's frame carries at most
	 * SMTP_RECIPIENTS_MAX recipients; a larger limit would answer 250 to
	 * every RCPT and then 451 at the end of data, on every retry. */
	char max[32], over[32];
	snprintf(max, sizeof(max), "%u", (unsigned)SMTP_RECIPIENTS_MAX);
	snprintf(over, sizeof(over), "%u", (unsigned)SMTP_RECIPIENTS_MAX + 1);
	assert_true(config_set(&c, CONFIG_FLAG, "max-recipients", max, err, sizeof(err)));
	assert_int_equal(c.max_recipients, SMTP_RECIPIENTS_MAX);
	assert_false(config_set(&c, CONFIG_FLAG, "max-recipients", over, err, sizeof(err)));
	assert_non_null(strstr(err, "max-recipients"));
	assert_non_null(strstr(err, max));
	assert_true(config_set(&c, CONFIG_FLAG, "bare-newline", "reject", err, sizeof(err)));
	assert_int_equal(c.bare_newline, SMTP_BARE_REJECT);
	assert_false(config_set(&c, CONFIG_FLAG, "bare-newline", "maybe", err, sizeof(err)));
	assert_false(config_set(&c, CONFIG_FLAG, "no-such-key", "1", err, sizeof(err)));
	assert_non_null(strstr(err, "no-such-key"));
	assert_true(config_set(&c, CONFIG_FLAG, "tls", "no", err, sizeof(err)));
	assert_false(c.tls);
	/* New Maildirs per hour (issue 8, item 4): 0 allowed (none created). */
	assert_int_equal(c.max_new_mailboxes_per_ip, 20);
	assert_int_equal(c.max_new_mailboxes, 200);
	assert_true(config_set(&c, CONFIG_FLAG, "max-new-mailboxes-per-ip", "0", err, sizeof(err)));
	assert_int_equal(c.max_new_mailboxes_per_ip, 0);
	assert_true(config_set(&c, CONFIG_FLAG, "max-new-mailboxes", "100000", err, sizeof(err)));
	assert_int_equal(c.max_new_mailboxes, 100000);
	assert_false(config_set(&c, CONFIG_FLAG, "max-new-mailboxes", "100001", err, sizeof(err)));
	assert_false(config_set(&c, CONFIG_FLAG, "max-new-mailboxes-per-ip", "-1", err, sizeof(err)));
	config_free(&c);
}

static void test_listen(void **state)
{
	struct listen_addr a;
	char err[256];
	assert_true(config_parse_listen("127.0.0.1:2525", &a, err, sizeof(err)));
	assert_string_equal(a.text, "127.0.0.1:2525");
	assert_false(a.wildcard);
	assert_true(config_parse_listen("[::1]:25", &a, err, sizeof(err)));
	assert_string_equal(a.text, "[::1]:25");
	assert_true(config_parse_listen("0.0.0.0:25", &a, err, sizeof(err)));
	assert_true(a.wildcard);
	assert_true(config_parse_listen("[::]:25", &a, err, sizeof(err)));
	assert_true(a.wildcard);
	assert_true(config_parse_listen(":25", &a, err, sizeof(err)));
	assert_true(a.wildcard);
	assert_false(config_parse_listen("::1:25", &a, err, sizeof(err)));
	assert_false(config_parse_listen("127.0.0.1", &a, err, sizeof(err)));
	assert_false(config_parse_listen("127.0.0.1:0", &a, err, sizeof(err)));
	assert_false(config_parse_listen("127.0.0.1:65536", &a, err, sizeof(err)));
	assert_false(config_parse_listen("mail.example:25", &a, err, sizeof(err)));
	assert_false(config_parse_listen("[::1]25", &a, err, sizeof(err)));
}

static void test_file_then_flags(void **state)
{
	char path[] = "/tmp/rawmail-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char text[] = "; comment\nmailroot = /srv/mail\n[serve]\ndomain = a.test, b.test\n"
	                    "listen = 127.0.0.1:2600\nlisten = [::1]:2600\n"
	                    /* Other commands' sections, and their keys, are not
	                     * serve's to check (issue 9: one file for all). */
	                    "[send]\norigin = example.org\n[delivery]\nport = 2525\ntls = verify\n"
	                    "[queue]\nretry-schedule = 1m\n";
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	struct serve_config c;
	char err[256];
	config_init(&c);
	assert_true(config_load_file(&c, path, err, sizeof(err)));
	assert_string_equal(c.mailroot, "/srv/mail");
	assert_int_equal(c.domains.n, 2);
	assert_int_equal(c.nlisten, 2);
	/* A flag replaces the file's list instead of adding to it. */
	assert_true(config_set(&c, CONFIG_FLAG, "domain", "c.test", err, sizeof(err)));
	assert_true(config_set(&c, CONFIG_FLAG, "listen", "127.0.0.1:2700", err, sizeof(err)));
	assert_int_equal(c.domains.n, 1);
	assert_string_equal(c.domains.items[0], "c.test");
	assert_int_equal(c.nlisten, 1);
	assert_true(config_finish(&c, err, sizeof(err)));
	config_free(&c);

	fd = open(path, O_WRONLY | O_TRUNC);
	const char bad[] = "mailroot = /x\nmax-recipients = 5\n";
	assert_int_equal(write(fd, bad, sizeof(bad) - 1), (ssize_t)(sizeof(bad) - 1));
	close(fd);
	config_init(&c);
	assert_false(config_load_file(&c, path, err, sizeof(err)));
	/* The file, the line and the key. */
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, ":2:"));
	assert_non_null(strstr(err, "max-recipients"));
	config_free(&c);

	/* A misspelt section is an error, not settings silently ignored. */
	fd = open(path, O_WRONLY | O_TRUNC);
	const char typo[] = "mailroot = /x\n[sned]\nfrom = a@b.test\n";
	assert_int_equal(write(fd, typo, sizeof(typo) - 1), (ssize_t)(sizeof(typo) - 1));
	close(fd);
	config_init(&c);
	assert_false(config_load_file(&c, path, err, sizeof(err)));
	assert_non_null(strstr(err, ":3:"));
	assert_non_null(strstr(err, "unknown section [sned]"));
	assert_non_null(strstr(err, "[send]"));
	config_free(&c);
	unlink(path);
	config_init(&c);
	assert_false(config_load_file(&c, "/nonexistent/rawmail.conf", err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open"));
	config_free(&c);
}

static void test_dns_server(void **state)
{
	char out[80], err[256];
	assert_true(dns_server_parse("127.0.0.1", out, sizeof(out), err, sizeof(err)));
	assert_string_equal(out, "127.0.0.1:53");
	assert_true(dns_server_parse("127.0.0.1:5353", out, sizeof(out), err, sizeof(err)));
	assert_string_equal(out, "127.0.0.1:5353");
	assert_true(dns_server_parse("[::1]:5353", out, sizeof(out), err, sizeof(err)));
	assert_string_equal(out, "[::1]:5353");
	assert_true(dns_server_parse("::1", out, sizeof(out), err, sizeof(err)));
	assert_string_equal(out, "[::1]:53");
	assert_false(dns_server_parse("dns.example:53", out, sizeof(out), err, sizeof(err)));
	assert_false(dns_server_parse("127.0.0.1:0", out, sizeof(out), err, sizeof(err)));
	assert_false(dns_server_parse("127.0.0.1:", out, sizeof(out), err, sizeof(err)));
	assert_false(dns_server_parse("[::1]5353", out, sizeof(out), err, sizeof(err)));
	assert_false(dns_server_parse("1.2.3.4:99999", out, sizeof(out), err, sizeof(err)));
	assert_non_null(strstr(err, "[::1]:5353"));
	struct serve_config c;
	config_init(&c);
	assert_false(config_set(&c, CONFIG_FLAG, "dns", "nameserver", err, sizeof(err)));
	assert_true(config_set(&c, CONFIG_FLAG, "dns", "[::1]:5353", err, sizeof(err)));
	config_free(&c);
}

static void test_ipcount(void **state)
{
	struct ipcount t;
	ipcount_init(&t, SMTP_PER_IP_PREFIX_IPV4_DEFAULT, SMTP_PER_IP_PREFIX_IPV6_DEFAULT);
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct sockaddr_in6 m = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &m.sin6_addr);
	assert_int_equal(ipcount_add(&t, (struct sockaddr *)&a), 1);
	/* An IPv4-mapped address is the same client. */
	assert_int_equal(ipcount_add(&t, (struct sockaddr *)&m), 2);
	/* Many distinct addresses: the table grows and keeps counting. */
	for (unsigned i = 0; i < 5000; i++) {
		struct sockaddr_in b = { .sin_family = AF_INET };
		b.sin_addr.s_addr = htonl(0x7f010000u + i);
		assert_int_equal(ipcount_add(&t, (struct sockaddr *)&b), 1);
	}
	for (unsigned i = 0; i < 5000; i++) {
		struct sockaddr_in b = { .sin_family = AF_INET };
		b.sin_addr.s_addr = htonl(0x7f010000u + i);
		ipcount_remove(&t, (struct sockaddr *)&b);
	}
	ipcount_remove(&t, (struct sockaddr *)&a);
	assert_int_equal(ipcount_add(&t, (struct sockaddr *)&a), 2);
	ipcount_free(&t);
}

static void test_limit_settings(void **state)
{
	struct serve_config c;
	char err[256];
	config_init(&c);
	assert_int_equal(c.ipv4_prefix, 32);
	assert_int_equal(c.ipv6_prefix, 64);
	assert_int_equal(c.min_data_rate, SMTP_MIN_DATA_RATE_DEFAULT);
	assert_true(config_set(&c, CONFIG_FILE, "ipv6-prefix", "56", err, sizeof(err)));
	assert_true(config_set(&c, CONFIG_FLAG, "ipv4-prefix", "24", err, sizeof(err)));
	assert_true(config_set(&c, CONFIG_FLAG, "min-data-rate", "2000", err, sizeof(err)));
	assert_int_equal(c.ipv6_prefix, 56);
	assert_int_equal(c.ipv4_prefix, 24);
	assert_int_equal(c.min_data_rate, 2000);
	assert_false(config_set(&c, CONFIG_FLAG, "ipv4-prefix", "33", err, sizeof(err)));
	assert_non_null(strstr(err, "ipv4-prefix"));
	assert_false(config_set(&c, CONFIG_FLAG, "ipv6-prefix", "129", err, sizeof(err)));
	assert_false(config_set(&c, CONFIG_FLAG, "min-data-rate", "0", err, sizeof(err)));
	assert_non_null(strstr(err, "octets per second"));
	config_free(&c);
}

static void test_received(void **state)
{
	struct sockaddr_in6 peer = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET6, "::1", &peer.sin6_addr);
	struct received_info r = {
		.helo = "evil\r\nX-Injected: yes (x)",
		.peer = (struct sockaddr *)&peer,
		.by = "mx.test",
		.esmtp = true,
		.tls = true,
		.tls_desc = "TLSv1.3 TLS_AES_256_GCM_SHA384",
		.qid = "QID",
		.for_rcpt = "u@[IPv6:::1]",
		.when = 0,
	};
	struct buf b;
	buf_init(&b, 4096);
	assert_int_equal(received_format(&b, &r), 0);
	assert_string_equal(b.data,
	                    "Received: from evil??X-Injected:?yes??x? ([IPv6:::1])\n"
	                    "\tby mx.test (rawmail) with ESMTPS (TLSv1.3 TLS_AES_256_GCM_SHA384) id QID\n"
	                    "\tfor <u@[IPv6:::1]>; Thu, 01 Jan 1970 00:00:00 +0000\n");
	buf_free(&b);
	/* A login (issue 10): ESMTPSA and the name, which cannot break out. */
	r.helo = "c";
	r.auth = true;
	r.auth_user = "alice@example.org\r\nX: (y)";
	r.for_rcpt = NULL;
	buf_init(&b, 4096);
	assert_int_equal(received_format(&b, &r), 0);
	assert_string_equal(b.data,
	                    "Received: from c ([IPv6:::1])\n"
	                    "\tby mx.test (rawmail) with ESMTPSA (TLSv1.3 TLS_AES_256_GCM_SHA384)\n"
	                    "\t(authenticated as alice@example.org??X:??y?) id QID;"
	                    " Thu, 01 Jan 1970 00:00:00 +0000\n");
	buf_free(&b);
}

/* Submission listeners, the users file and trusted networks (issue 10). */
static void test_submission(void **state)
{
	struct serve_config c;
	char err[256];
	config_init(&c);
	assert_int_equal(c.max_auth_failures, 3);
	assert_true(config_set(&c, CONFIG_FILE, "listen", "127.0.0.1:25", err, sizeof(err)));
	assert_true(config_set(&c, CONFIG_FILE, "submission", "127.0.0.1:587", err, sizeof(err)));
	assert_true(config_set(&c, CONFIG_FILE, "submissions", "[::1]:465", err, sizeof(err)));
	/* A flag replaces the file's listeners of its kind only. */
	assert_true(config_set(&c, CONFIG_FLAG, "submission", "127.0.0.2:587", err, sizeof(err)));
	assert_int_equal(c.nlisten, 3);
	assert_true(config_has_listener(&c, LISTEN_MX));
	assert_true(config_has_listener(&c, LISTEN_SUBMISSIONS));
	bool found = false;
	for (size_t i = 0; i < c.nlisten; i++)
		if (c.listen[i].kind == LISTEN_SUBMISSION) {
			assert_string_equal(c.listen[i].text, "127.0.0.2:587");
			found = true;
		}
	assert_true(found);
	assert_false(config_set(&c, CONFIG_FLAG, "submission", "nowhere", err, sizeof(err)));
	/* Submission without a users file cannot work. */
	assert_false(config_finish(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "--users"));
	assert_true(config_set(&c, CONFIG_FLAG, "users", "/etc/rawmail/users", err, sizeof(err)));
	assert_true(config_finish(&c, err, sizeof(err)));
	assert_int_equal(c.nlisten, 3); /* no built-in listeners added */
	assert_false(config_set(&c, CONFIG_FLAG, "max-auth-failures", "0", err, sizeof(err)));
	assert_true(config_set(&c, CONFIG_FLAG, "max-auth-failures", "5", err, sizeof(err)));
	assert_int_equal(c.max_auth_failures, 5);
	assert_true(config_set(&c, CONFIG_FILE, "trusted-network", "10.0.0.0/8, 192.168.1.0/24", err,
	                       sizeof(err)));
	assert_int_equal(c.trusted_networks.n, 2);
	/* Implicit TLS without TLS. */
	assert_true(config_set(&c, CONFIG_FLAG, "tls", "no", err, sizeof(err)));
	assert_false(config_finish(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "submissions"));
	config_free(&c);
	/* A users file with no submission listener to use it. */
	config_init(&c);
	assert_true(config_set(&c, CONFIG_FLAG, "users", "/etc/rawmail/users", err, sizeof(err)));
	assert_false(config_finish(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "submission"));
	config_free(&c);
	/* Only submission: a submission-only server (no built-in MX listener). */
	config_init(&c);
	assert_true(config_set(&c, CONFIG_FLAG, "submission", "127.0.0.1:587", err, sizeof(err)));
	assert_true(config_set(&c, CONFIG_FLAG, "users", "u", err, sizeof(err)));
	assert_true(config_finish(&c, err, sizeof(err)));
	assert_int_equal(c.nlisten, 1);
	assert_false(config_has_listener(&c, LISTEN_MX));
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_file_then_flags),
		cmocka_unit_test(test_dns_server),
		cmocka_unit_test(test_ipcount),
		cmocka_unit_test(test_limit_settings),
		cmocka_unit_test(test_received),
		cmocka_unit_test(test_submission),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
