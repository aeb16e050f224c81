/* dlopen of the MQTT client libraries (see libs.h).  Each function the
 * bridge calls is defined here with the library's own prototype (the
 * compiler checks ours against mosquitto.h and MQTTAsync.h) and calls
 * through a pointer set by mqtt_libs_load.
 *
 * These definitions stay inside the executable: it links no library that
 * refers to them, so they are not in its dynamic symbol table and the
 * loaded libraries' calls to their own functions still reach their own.
 * (Check: nm -D --defined-only build/rawmail | grep -c mosquitto -> 0.) */
#include "mqtt/libs.h"

#include <dlfcn.h>
#include <stdio.h>

#include <MQTTAsync.h>
#include <mosquitto.h>

/* The sonames the build linked against before (Debian: libmosquitto1,
 * libpaho-mqtt1.3).  A new ABI renames them, and then this fails cleanly. */
#define LIB_MOSQUITTO "libmosquitto.so.1"
#define LIB_PAHO "libpaho-mqtt3as.so.1"

/* X(library, return type, name, parameters, arguments); V for void ones. */
#define MOSQ_FUNCS(X, V) \
	X(0, int, mosquitto_lib_init, (void), ()) \
	X(0, int, mosquitto_lib_cleanup, (void), ()) \
	X(0, struct mosquitto *, mosquitto_new, (const char *id, bool clean, void *obj), \
	  (id, clean, obj)) \
	V(0, mosquitto_destroy, (struct mosquitto *m), (m)) \
	X(0, int, mosquitto_will_set, \
	  (struct mosquitto *m, const char *t, int len, const void *p, int qos, bool retain), \
	  (m, t, len, p, qos, retain)) \
	X(0, int, mosquitto_username_pw_set, (struct mosquitto *m, const char *u, const char *pw), \
	  (m, u, pw)) \
	X(0, int, mosquitto_connect_async, (struct mosquitto *m, const char *host, int port, int ka), \
	  (m, host, port, ka)) \
	X(0, int, mosquitto_disconnect, (struct mosquitto *m), (m)) \
	X(0, int, mosquitto_publish, \
	  (struct mosquitto *m, int *mid, const char *t, int len, const void *p, int qos, \
	   bool retain), \
	  (m, mid, t, len, p, qos, retain)) \
	X(0, int, mosquitto_loop_read, (struct mosquitto *m, int max), (m, max)) \
	X(0, int, mosquitto_loop_write, (struct mosquitto *m, int max), (m, max)) \
	X(0, int, mosquitto_loop_misc, (struct mosquitto *m), (m)) \
	X(0, int, mosquitto_socket, (struct mosquitto *m), (m)) \
	X(0, bool, mosquitto_want_write, (struct mosquitto *m), (m)) \
	X(0, int, mosquitto_int_option, (struct mosquitto *m, enum mosq_opt_t o, int v), (m, o, v)) \
	X(0, int, mosquitto_tls_set, \
	  (struct mosquitto *m, const char *cafile, const char *capath, const char *cert, \
	   const char *key, int (*pw)(char *, int, int, void *)), \
	  (m, cafile, capath, cert, key, pw)) \
	V(0, mosquitto_connect_v5_callback_set, \
	  (struct mosquitto *m, \
	   void (*cb)(struct mosquitto *, void *, int, int, const mosquitto_property *)), \
	  (m, cb)) \
	V(0, mosquitto_disconnect_v5_callback_set, \
	  (struct mosquitto *m, void (*cb)(struct mosquitto *, void *, int, const mosquitto_property *)), \
	  (m, cb)) \
	V(0, mosquitto_publish_v5_callback_set, \
	  (struct mosquitto *m, \
	   void (*cb)(struct mosquitto *, void *, int, int, const mosquitto_property *)), \
	  (m, cb)) \
	V(0, mosquitto_log_callback_set, \
	  (struct mosquitto *m, void (*cb)(struct mosquitto *, void *, int, const char *)), (m, cb)) \
	X(0, const char *, mosquitto_strerror, (int e), (e)) \
	X(0, const char *, mosquitto_connack_string, (int c), (c)) \
	X(0, const char *, mosquitto_reason_string, (int c), (c))

#define PAHO_FUNCS(X, V) \
	X(1, int, MQTTAsync_setCallbacks, \
	  (MQTTAsync h, void *ctx, MQTTAsync_connectionLost *cl, MQTTAsync_messageArrived *ma, \
	   MQTTAsync_deliveryComplete *dc), \
	  (h, ctx, cl, ma, dc)) \
	X(1, int, MQTTAsync_createWithOptions, \
	  (MQTTAsync *h, const char *uri, const char *id, int persistence, void *pctx, \
	   MQTTAsync_createOptions *o), \
	  (h, uri, id, persistence, pctx, o)) \
	X(1, int, MQTTAsync_connect, (MQTTAsync h, const MQTTAsync_connectOptions *o), (h, o)) \
	X(1, int, MQTTAsync_disconnect, (MQTTAsync h, const MQTTAsync_disconnectOptions *o), (h, o)) \
	X(1, int, MQTTAsync_isConnected, (MQTTAsync h), (h)) \
	X(1, int, MQTTAsync_subscribeMany, \
	  (MQTTAsync h, int n, char *const *t, const int *qos, MQTTAsync_responseOptions *r), \
	  (h, n, t, qos, r)) \
	V(1, MQTTAsync_freeMessage, (MQTTAsync_message * *msg), (msg)) \
	V(1, MQTTAsync_free, (void *p), (p)) \
	V(1, MQTTAsync_destroy, (MQTTAsync * h), (h)) \
	X(1, const char *, MQTTAsync_strerror, (int c), (c)) \
	X(1, int, MQTTProperties_add, (MQTTProperties * props, const MQTTProperty *prop), \
	  (props, prop)) \
	V(1, MQTTProperties_free, (MQTTProperties * props), (props))

#define DEFINE(lib, ret, name, params, args) \
	static ret(*p_##name) params; \
	ret name params { return p_##name args; }
#define DEFINE_VOID(lib, name, params, args) \
	static void(*p_##name) params; \
	void name params { p_##name args; }
MOSQ_FUNCS(DEFINE, DEFINE_VOID)
PAHO_FUNCS(DEFINE, DEFINE_VOID)

struct sym {
	int lib;
	const char *name;
	void **ptr;
};
/* POSIX's own idiom for storing dlsym's result in a function pointer. */
#define ENTRY(lib, ret, name, params, args) { lib, #name, (void **)&p_##name },
#define ENTRY_VOID(lib, name, params, args) { lib, #name, (void **)&p_##name },
static const struct sym syms[] = { MOSQ_FUNCS(ENTRY, ENTRY_VOID) PAHO_FUNCS(ENTRY, ENTRY_VOID) };

bool mqtt_libs_load(char *err, size_t errlen)
{
	static bool loaded;
	if (loaded)
		return true;
	/* RTLD_LOCAL: their symbols serve only the lookups here.  RTLD_NOW: a
	 * missing symbol inside them shows now, not at a first publish. */
	const char *names[2] = { LIB_MOSQUITTO, LIB_PAHO };
	void *lib[2];
	for (int i = 0; i < 2; i++) {
		if (!(lib[i] = dlopen(names[i], RTLD_NOW | RTLD_LOCAL))) {
			snprintf(err, errlen, "cannot load %s: %s", names[i], dlerror());
			return false;
		}
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *f = dlsym(lib[syms[i].lib], syms[i].name);
		if (!f) {
			snprintf(err, errlen, "%s has no %s", names[syms[i].lib], syms[i].name);
			return false;
		}
		*syms[i].ptr = f;
	}
	loaded = true;   /* the libraries stay loaded until the process ends */
	return true;
}
