/* bench/mqtt_floor_pub.c: the least a publisher can do, for
 * bench/mqtt_bridge.py's floor.  Publishes N messages of SIZE octets at
 * QoS 1 to a broker on 127.0.0.1:PORT, RATE a second, BURST at a time (1:
 * each message as it comes, as a bridge does at low load), with at most
 * 64 awaiting their PUBACK; no file read, no MIME, no JSON.  Run beside a
 * `rawmail serve` without --mqtt, it shows what the broker's work and a
 * publisher's wakeups cost serve on the same cores, whatever the bridge
 * does.  Prints the CPU it used, in microseconds per message.
 *
 *     mqtt_floor_pub PORT N SIZE RATE BURST
 *
 * Built by bench/mqtt_bridge.py: cc -O2 -o ... mqtt_floor_pub.c -lmosquitto */
#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static int inflight, acked;

static void on_publish(struct mosquitto *m, void *arg, int mid)
{
	inflight--;
	acked++;
}

static int connected;

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
	connected = rc == 0 ? 1 : -1;
}

/* One turn of the library's work, waiting at most timeout_ms. */
static void turn(struct mosquitto *m, int timeout_ms)
{
	struct pollfd p = { .fd = mosquitto_socket(m),
		                .events = POLLIN | (mosquitto_want_write(m) ? POLLOUT : 0) };
	if (poll(&p, 1, timeout_ms) > 0) {
		if (p.revents & POLLIN)
			mosquitto_loop_read(m, 1);
		if (p.revents & POLLOUT)
			mosquitto_loop_write(m, 1);
	}
	mosquitto_loop_misc(m);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: mqtt_floor_pub PORT N SIZE RATE BURST\n");
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[2]), size = atoi(argv[3]), burst = atoi(argv[5]);
	double rate = atof(argv[4]);
	if (n < 1 || size < 1 || rate <= 0 || burst < 1)
		return 2;
	mosquitto_lib_init();
	struct mosquitto *m = mosquitto_new(NULL, true, NULL);
	char *payload = malloc((size_t)size);
	if (!m || !payload)
		return 1;
	memset(payload, 'x', (size_t)size);
	mosquitto_publish_callback_set(m, on_publish);
	mosquitto_connect_callback_set(m, on_connect);
	if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS)
		return 1;
	while (!connected)
		turn(m, 100);
	if (connected < 0)
		return 1;
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	double t0 = now();
	for (int i = 0; i < n;) {
		/* The next burst is due at t0 + i / rate. */
		double due = t0 + i / rate;
		while (now() < due)
			turn(m, (int)((due - now()) * 1000) + 1);
		for (int k = 0; k < burst && i < n; k++, i++) {
			while (inflight >= 64)
				turn(m, 100);
			inflight++;
			if (mosquitto_publish(m, NULL, "floor/x", size, payload, 1, false) != MOSQ_ERR_SUCCESS)
				return 1;
		}
	}
	while (acked < n)
		turn(m, 100);
	getrusage(RUSAGE_SELF, &r1);
	double us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) *
	                    1e6 +
	            (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
	             r0.ru_stime.tv_usec);
	printf("%.1f\n", us / n);
	mosquitto_disconnect(m);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	free(payload);
	return 0;
}
