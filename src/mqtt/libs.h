/* The MQTT client libraries (libmosquitto, Paho's asynchronous client),
 * loaded with dlopen by the bridge process instead of linked.
 *
 * Why: every rawmail process would otherwise load them at start, and
 * `rawmail send` starts once per message.  Linked, they cost each process
 * ~0.3 ms of the dynamic loader; in the STATIC_LIBS build they also pulled
 * in the shared libssl and libcrypto beside the static OpenSSL, which
 * undid that build's gain (bench/send "start-up by build", doc/DESIGN.md
 * "Start-up").  libs.c defines the functions the bridge calls, under their
 * own names, each forwarding to the loaded library. */
#ifndef RAWMAIL_MQTT_LIBS_H
#define RAWMAIL_MQTT_LIBS_H

#include <stdbool.h>
#include <stddef.h>

/* Loads both libraries and every function the bridge uses; true if all
 * were found (again: true at once).  Otherwise false with the loader's
 * reason in err.  Call before any mosquitto_ or MQTTAsync_ function. */
bool mqtt_libs_load(char *err, size_t errlen);

#endif
