/* The bridge's settings (issue 12): the URL, each key, and the checks of
 * the whole, with errors that name the flag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/settings.h"

static bool set(struct mqtt_settings *s, const char *key, const char *value, char *err,
                size_t errlen)
{
	bool known;
	return mqtt_settings_set(s, 2, key, value, &known, err, errlen);
}

static void test_url(void **state)
{
	struct mqtt_settings s;
	char err[512];
	mqtt_settings_init(&s);
	assert_true(set(&s, "url", "mqtt://127.0.0.1", err, sizeof(err)));
	assert_string_equal(s.host, "127.0.0.1");
	assert_int_equal(s.port, 1883);
	assert_false(s.tls);
	assert_null(s.user);
	assert_true(set(&s, "url", "mqtts://ha@broker.example.org", err, sizeof(err)));
	assert_string_equal(s.host, "broker.example.org");
	assert_string_equal(s.user, "ha");
	assert_int_equal(s.port, 8883);
	assert_true(s.tls);
	assert_true(set(&s, "url", "mqtt://[::1]:18830", err, sizeof(err)));
	assert_string_equal(s.host, "::1");
	assert_int_equal(s.port, 18830);
	assert_null(s.user);
	assert_true(set(&s, "url", "MQTT://u@10.0.0.5:1", err, sizeof(err)));
	assert_int_equal(s.port, 1);
	/* Refused, each with a sentence naming the flag. */
	const char *bad[] = {
		"tcp://127.0.0.1", "mqtt://", "mqtt://:1883", "mqtt://host:0", "mqtt://host:65536",
		"mqtt://host:1k", "mqtt://host:", "mqtt://[::1", "mqtt://[::1]x", "mqtt://[nothex]:1",
		"mqtt://host/topic", "mqtt://@host", "mqtt://bad_host!", "mqtt://user:pw@host",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_false(set(&s, "url", bad[i], err, sizeof(err)));
		assert_non_null(strstr(err, "mqtt"));
	}
	/* A password in the URL says where it belongs. */
	assert_false(set(&s, "url", "mqtt://user:pw@host", err, sizeof(err)));
	assert_non_null(strstr(err, "--mqtt-password-file"));
	mqtt_settings_free(&s);
}

static void test_keys(void **state)
{
	struct mqtt_settings s;
	char err[512];
	bool known;
	mqtt_settings_init(&s);
	assert_string_equal(s.topic, "rawmail");
	assert_int_equal(s.outbox_max, 100000);
	assert_int_equal(s.send_rate, 60);
	assert_int_equal(s.max_attachment, 4u * 1024 * 1024);
	assert_true(set(&s, "topic", "home/mail", err, sizeof(err)));
	assert_string_equal(s.topic, "home/mail");
	assert_false(set(&s, "topic", "home/+", err, sizeof(err)));
	assert_false(set(&s, "topic", "home/#", err, sizeof(err)));
	assert_false(set(&s, "topic", "/home", err, sizeof(err)));
	assert_false(set(&s, "topic", "home/", err, sizeof(err)));
	assert_false(set(&s, "topic", "$SYS", err, sizeof(err)));
	assert_non_null(strstr(err, "mqtt-topic"));
	assert_true(set(&s, "max-attachment", "512K", err, sizeof(err)));
	assert_int_equal(s.max_attachment, 512 * 1024);
	assert_false(set(&s, "max-attachment", "0", err, sizeof(err)));
	assert_true(set(&s, "outbox-max", "10", err, sizeof(err)));
	assert_int_equal(s.outbox_max, 10);
	assert_true(set(&s, "protocol", "5", err, sizeof(err)));
	assert_int_equal(s.protocol, 5);
	assert_false(set(&s, "protocol", "3.1", err, sizeof(err)));
	assert_false(set(&s, "client-id", "has space", err, sizeof(err)));
	assert_true(set(&s, "client-id", "cam-gw-1", err, sizeof(err)));
	assert_true(set(&s, "from", "cam@example.org", err, sizeof(err)));
	assert_false(set(&s, "from", "not an address", err, sizeof(err)));
	assert_non_null(strstr(err, "mqtt-from"));
	/* send-allow: a list; a higher layer replaces a lower one's. */
	assert_true(mqtt_settings_set(&s, 1, "send-allow", "a@x.test @y.test", &known, err,
	                              sizeof(err)));
	assert_int_equal(s.send_allow.n, 2);
	assert_true(mqtt_settings_set(&s, 1, "send-allow", "b@x.test", &known, err, sizeof(err)));
	assert_int_equal(s.send_allow.n, 3);
	assert_true(mqtt_settings_set(&s, 2, "send-allow", "@z.test", &known, err, sizeof(err)));
	assert_int_equal(s.send_allow.n, 1);
	assert_string_equal(s.send_allow.items[0], "@z.test");
	assert_false(set(&s, "send-allow", "@", err, sizeof(err)));
	assert_false(set(&s, "send-allow", "nodomain", err, sizeof(err)));
	assert_false(mqtt_settings_set(&s, 2, "nonsense", "1", &known, err, sizeof(err)));
	assert_false(known);
	mqtt_settings_free(&s);
}

static void test_finish(void **state)
{
	struct mqtt_settings s;
	char err[512];
	mqtt_settings_init(&s);
	assert_true(mqtt_settings_finish(&s, err, sizeof(err)));   /* no bridge */
	assert_true(set(&s, "send", "yes", err, sizeof(err)));
	assert_false(mqtt_settings_finish(&s, err, sizeof(err)));
	assert_non_null(strstr(err, "--mqtt URL"));
	assert_true(set(&s, "url", "mqtt://127.0.0.1", err, sizeof(err)));
	assert_false(mqtt_settings_finish(&s, err, sizeof(err)));
	assert_non_null(strstr(err, "--mqtt-from"));
	assert_true(set(&s, "from", "ups@example.org", err, sizeof(err)));
	assert_true(mqtt_settings_finish(&s, err, sizeof(err)));
	assert_true(set(&s, "password-file", "/etc/pw", err, sizeof(err)));
	assert_false(mqtt_settings_finish(&s, err, sizeof(err)));
	assert_non_null(strstr(err, "USER@HOST"));
	assert_true(set(&s, "url", "mqtt://ha@127.0.0.1", err, sizeof(err)));
	assert_true(mqtt_settings_finish(&s, err, sizeof(err)));
	assert_true(set(&s, "cafile", "/etc/ca.pem", err, sizeof(err)));
	assert_false(mqtt_settings_finish(&s, err, sizeof(err)));
	assert_non_null(strstr(err, "mqtts://"));
	mqtt_settings_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_finish),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
