/* rawmail send's settings: [send], [delivery] and [queue] of
 * rawmail.conf(5), the choice of the file, and flags over the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/delivery.h"
#include "cli/send.h"
#include "util/config_file.h"

static const char pin_a[] =
	"SHA256:0000000000000000000000000000000000000000000000000000000000000001";
static const char pin_b[] =
	"SHA256:0000000000000000000000000000000000000000000000000000000000000002";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Runs send_config_load on a file holding text; returns its status and
 * puts what it printed on stderr in out. */
static int load(struct send_opts *o, const char *text, char *out, size_t outlen)
{
	char path[] = "/tmp/rawmail-send-conf-XXXXXX", errpath[] = "/tmp/rawmail-send-err-XXXXXX";
	int fd = mkstemp(path), efd = mkstemp(errpath);
	assert_true(fd >= 0 && efd >= 0);
	close(fd);
	write_file(path, text);
	fflush(stderr);
	int saved = dup(2);
	dup2(efd, 2);
	int rc = send_config_load(o, path);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(efd, out, outlen - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(efd);
	unlink(errpath);
	unlink(path);
	return rc;
}

static void test_delivery_values(void **state)
{
	struct cli_delivery d;
	char err[256];
	cli_delivery_init(&d);
	assert_int_equal(d.port, 25);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "port", "2525", err, sizeof(err)), 1);
	assert_int_equal(d.port, 2525);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "port", "0", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "1 to 65535"));
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "port", "25x", err, sizeof(err)), -1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "dns", "[::1]:5353", err, sizeof(err)),
	                 1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "dns", "ns.example", err, sizeof(err)),
	                 -1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "tls", "verify", err, sizeof(err)), 1);
	assert_int_equal(d.tls, CLI_TLS_VERIFY);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "tls", "yes", err, sizeof(err)), -1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "timeout", "3601", err, sizeof(err)),
	                 -1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "helo", "mx.example.org", err,
	                                  sizeof(err)), 1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "helo", "a b", err, sizeof(err)), -1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "helo", "[IPv6:::1]", err,
	                                  sizeof(err)), 1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "family", "6", err, sizeof(err)), 1);
	assert_false(d.family_auto);
	assert_int_equal(d.family, DNS_FAMILY_V6_ONLY);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "family", "auto", err, sizeof(err)),
	                 1);
	assert_true(d.family_auto);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "family", "ipv4", err, sizeof(err)),
	                 -1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "smarthost", "x", err, sizeof(err)),
	                 0);

	struct client_outbound_config c = cli_delivery_engine_config(&d);
	assert_int_equal(c.port, 2525);
	assert_string_equal(c.dns, "[::1]:5353");
	assert_int_equal(c.tls, CLIENT_TLS_REQUIRE);
	assert_true(c.tls_verify);
	assert_string_equal(c.helo, "[IPv6:::1]");
}

/* relay, route, auth-user, auth-password-file: values and the checks
 * that need them together. */
static void test_delivery_relay(void **state)
{
	struct cli_delivery d;
	char err[256];
	cli_delivery_init(&d);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "relay", "smtp.example.net", err,
	                                  sizeof(err)), 1);
	assert_int_equal(d.relay.port, 587);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "relay", "smtp example", err,
	                                  sizeof(err)), -1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "route", "lab.test=192.168.1.100",
	                                  err, sizeof(err)), 1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "route", "LAB.test=192.168.1.101:26",
	                                  err, sizeof(err)), 1);
	assert_int_equal(d.nroutes, 1);   /* the same domain: replaced */
	assert_string_equal(d.routes[0].to.host, "192.168.1.101");
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "route", "lab.test", err,
	                                  sizeof(err)), -1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "auth-user", "me", err, sizeof(err)),
	                 1);
	/* A user without a password file. */
	assert_false(cli_delivery_finish(&d, err, sizeof(err)));
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "auth-password-file", "/nonexistent",
	                                  err, sizeof(err)), 1);
	assert_true(cli_delivery_finish(&d, err, sizeof(err)));
	char warn[256];
	assert_int_equal(cli_delivery_password_load(&d, err, sizeof(err), warn, sizeof(warn)), -1);
	assert_non_null(strstr(err, "/nonexistent"));

	/* Default TLS: verified STARTTLS to the relay, opportunistic to MX. */
	struct client_outbound_config c = cli_delivery_engine_config(&d);
	assert_non_null(c.relay);
	assert_int_equal(c.relay_tls, CLIENT_TLS_REQUIRE);
	assert_true(c.relay_verify);
	assert_int_equal(c.tls, CLIENT_TLS_OPPORTUNISTIC);
	assert_false(c.tls_verify);
	assert_string_equal(c.auth_user, "me");
	/* --tls require: TLS to the relay without verification. */
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "tls", "require", err, sizeof(err)),
	                 1);
	c = cli_delivery_engine_config(&d);
	assert_false(c.relay_verify);
	/* --relay none drops the file's relay and its login. */
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "relay", "none", err, sizeof(err)), 1);
	assert_true(cli_delivery_finish(&d, err, sizeof(err)));
	assert_null(d.auth_user);
	c = cli_delivery_engine_config(&d);
	assert_null(c.relay);
	assert_null(c.auth_user);
	/* auth-user without any relay is a mistake. */
	cli_delivery_init(&d);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "auth-user", "me", err, sizeof(err)),
	                 1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "auth-password-file", "/x", err,
	                                  sizeof(err)), 1);
	assert_false(cli_delivery_finish(&d, err, sizeof(err)));
	assert_non_null(strstr(err, "--relay"));

	/* smtps:// with --tls none: a contradiction. */
	cli_delivery_init(&d);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "relay", "smtps://smtp.example.net",
	                                  err, sizeof(err)), 1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "tls", "none", err, sizeof(err)), 1);
	assert_false(cli_delivery_finish(&d, err, sizeof(err)));
	/* A cafile for the relay's verification needs no --tls verify. */
	cli_delivery_init(&d);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "relay", "smtp.example.net", err,
	                                  sizeof(err)), 1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "cafile", "/etc/ssl/x.pem", err,
	                                  sizeof(err)), 1);
	assert_true(cli_delivery_finish(&d, err, sizeof(err)));
	assert_non_null(d.cafile);
}

static void test_delivery_layers(void **state)
{
	struct cli_delivery d;
	char err[256];
	/* The file's pins are replaced by the flags', not added to. */
	cli_delivery_init(&d);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "tls-fingerprint", pin_a, err,
	                                  sizeof(err)), 1);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FILE, "tls-fingerprint", pin_b, err,
	                                  sizeof(err)), 1);
	assert_int_equal(d.npins, 2);
	assert_int_equal(cli_delivery_set(&d, CLI_FROM_FLAG, "tls-fingerprint", pin_b, err,
	                                  sizeof(err)), 1);
	assert_int_equal(d.npins, 1);
	assert_int_equal(d.pins[0][31], 2);
	/* Pins imply require. */
	assert_true(cli_delivery_finish(&d, err, sizeof(err)));
	assert_int_equal(d.tls, CLI_TLS_REQUIRE);
	/* ... but not over an explicit none. */
	cli_delivery_init(&d);
	cli_delivery_set(&d, CLI_FROM_FILE, "tls-fingerprint", pin_a, err, sizeof(err));
	cli_delivery_set(&d, CLI_FROM_FLAG, "tls", "none", err, sizeof(err));
	assert_false(cli_delivery_finish(&d, err, sizeof(err)));
	assert_non_null(strstr(err, "needs TLS"));
	/* The site's cafile waits for tls verify; a flag's without it is a
	 * mistake worth saying. */
	cli_delivery_init(&d);
	cli_delivery_set(&d, CLI_FROM_FILE, "cafile", "/etc/site-ca.pem", err, sizeof(err));
	assert_true(cli_delivery_finish(&d, err, sizeof(err)));
	assert_null(d.cafile);
	cli_delivery_init(&d);
	cli_delivery_set(&d, CLI_FROM_FILE, "cafile", "/etc/site-ca.pem", err, sizeof(err));
	cli_delivery_set(&d, CLI_FROM_FILE, "tls", "verify", err, sizeof(err));
	assert_true(cli_delivery_finish(&d, err, sizeof(err)));
	assert_string_equal(d.cafile, "/etc/site-ca.pem");
	cli_delivery_init(&d);
	cli_delivery_set(&d, CLI_FROM_FLAG, "cafile", "/x.pem", err, sizeof(err));
	assert_false(cli_delivery_finish(&d, err, sizeof(err)));
	assert_non_null(strstr(err, "--cafile"));
}

static void test_choose(void **state)
{
	char path[] = "/tmp/rawmail-choose-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_string_equal(config_file_choose("/given", "/env", path), "/given");
	assert_string_equal(config_file_choose(NULL, "/env", path), "/env");
	assert_string_equal(config_file_choose(NULL, "", path), path);
	assert_string_equal(config_file_choose(NULL, NULL, path), path);
	unlink(path);
	/* A default that does not exist: built-in settings. */
	assert_null(config_file_choose(NULL, NULL, path));
	/* One named explicitly is read even if missing (and then an error). */
	assert_string_equal(config_file_choose(NULL, path, "/etc/rawmail.conf"), path);
}

static void test_send_file(void **state)
{
	struct send_opts o;
	char out[1024];
	send_opts_init(&o, "rawmail send");
	assert_int_equal(load(&o,
	                      "; serve's keys: not send's\nmailroot = /var/mail/rawmail\n"
	                      "[serve]\ntls = yes\n"
	                      "[send]\norigin = Example.ORG\nfrom-name = Cron\nno-queue = yes\n"
	                      "[delivery]\nport = 2526\ndns = 127.0.0.1:5353\ntls = none\n"
	                      "family = 4\ntls-fingerprint = " "SHA256:"
	                      "0000000000000000000000000000000000000000000000000000000000000001\n"
	                      "[queue]\nspool = /var/spool/site\nretry-schedule = 1m,5m\n",
	                      out, sizeof(out)),
	                 0);
	assert_string_equal(out, "");
	assert_string_equal(o.origin, "example.org");
	assert_string_equal(o.from_name, "Cron");
	assert_true(o.no_queue);
	assert_int_equal(o.delivery.port, 2526);
	assert_string_equal(o.delivery.dns, "127.0.0.1:5353");
	assert_int_equal(o.delivery.tls, CLI_TLS_NONE);
	assert_false(o.delivery.family_auto);
	assert_string_equal(o.spool, "/var/spool/site");   /* [queue]'s, [send] has none */
	assert_string_equal(o.queue.retry_schedule, "1m,5m");
	assert_null(o.from);

	/* Flags override the file: a port, a family, a TLS mode, pins. */
	assert_int_equal(send_option(&o, OPT_PORT, "2527"), 0);
	assert_int_equal(o.delivery.port, 2527);
	assert_int_equal(send_option(&o, '6', NULL), 0);
	assert_int_equal(o.delivery.family, DNS_FAMILY_V6_ONLY);
	assert_int_equal(send_option(&o, OPT_TLS, "require"), 0);
	assert_int_equal(send_option(&o, OPT_FINGERPRINT, pin_b), 0);
	assert_int_equal(o.delivery.npins, 1);
	assert_int_equal(send_opts_check(&o), 0);
	send_opts_free(&o);
}

static void test_send_file_errors(void **state)
{
	struct send_opts o;
	char out[1024];
	send_opts_init(&o, "sendmail");
	/* An unknown key: the file, its line, the key and the section's keys. */
	assert_int_equal(load(&o, "[delivery]\nport = 2525\nsmarthost = smtp.example.org\n", out,
	                      sizeof(out)),
	                 SEND_EXIT_CONFIG);
	assert_non_null(strstr(out, "sendmail: /tmp/rawmail-send-conf-"));
	assert_non_null(strstr(out, ":3: unknown setting 'smarthost' in [delivery]"));
	assert_non_null(strstr(out, "tls-fingerprint"));
	send_opts_free(&o);

	send_opts_init(&o, "rawmail send");
	assert_int_equal(load(&o, "[send]\norigin = vm\n", out, sizeof(out)), SEND_EXIT_CONFIG);
	assert_non_null(strstr(out, ":2: origin 'vm': expected a domain name with a dot"));
	send_opts_free(&o);

	send_opts_init(&o, "rawmail send");
	assert_int_equal(load(&o, "[delivery]\ntls = maybe\n", out, sizeof(out)), SEND_EXIT_CONFIG);
	assert_non_null(strstr(out, ":2: tls 'maybe': use none, opportunistic, require or verify"));
	send_opts_free(&o);

	/* serve's keys belong in serve's section, not send's. */
	send_opts_init(&o, "rawmail send");
	assert_int_equal(load(&o, "[send]\nmailroot = /x\n", out, sizeof(out)), SEND_EXIT_CONFIG);
	assert_non_null(strstr(out, "unknown setting 'mailroot' in [send]"));
	send_opts_free(&o);

	send_opts_init(&o, "rawmail send");
	assert_int_equal(load(&o, "[sendmail]\nfrom = a@b.example\n", out, sizeof(out)),
	                 SEND_EXIT_CONFIG);
	assert_non_null(strstr(out, "unknown section [sendmail]"));
	send_opts_free(&o);

	/* from in the file is named as such when it is wrong. */
	send_opts_init(&o, "rawmail send");
	assert_int_equal(load(&o, "[send]\nfrom = someone\n", out, sizeof(out)), 0);
	assert_string_equal(o.from, "someone");
	assert_non_null(strstr(o.from_where, "from in /tmp/rawmail-send-conf-"));
	send_opts_free(&o);

	send_opts_init(&o, "rawmail send");
	assert_int_equal(send_config_load(&o, "/nonexistent/rawmail.conf"), SEND_EXIT_CONFIG);
	send_opts_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delivery_values),
		cmocka_unit_test(test_delivery_relay),
		cmocka_unit_test(test_delivery_layers),
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_send_file),
		cmocka_unit_test(test_send_file_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
