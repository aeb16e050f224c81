# rawmail build.  A plain GNU Makefile: the project is one binary, a few
# dozen files and three libraries found with pkg-config, so make needs no
# extra tool on a fresh machine and every rule is visible here.
#
#   make                 build/rawmail and build/rawmail-sendmail, the small
#                        program the sendmail link runs (optimised, with debug info)
#   make SAN=1           build-asan/rawmail (ASan + UBSan), used by the tests
#   make STATIC_LIBS=1   build-static/rawmail: libevent, OpenSSL, c-ares, inih
#                        linked in (faster start; rebuild for their updates)
#   make unit            build and run the cmocka unit tests
#   make fuzz            build libFuzzer harnesses (clang) into build-fuzz/
#   make check           everything the CI runs (see tests/run)
#   make install PREFIX=/usr/local DESTDIR=   (also rawmail-sendmail, the
#                        sendmail/mailq/newaliases links, systemd units)
#   make install-sendmail   the link /usr/sbin/sendmail -> rawmail-sendmail
#                        (never over another MTA)

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
SAN      ?=
ifeq ($(SAN),1)
BUILD    ?= build-asan
SANFLAGS  = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT       = -O1
else ifeq ($(STATIC_LIBS),1)
BUILD    ?= build-static
SANFLAGS  =
OPT       = -O2
else
BUILD    ?= build
SANFLAGS  =
OPT       = -O2
endif

PKGS      = libevent libevent_openssl openssl inih libcares libidn2 jansson json-c
WARN      = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wpointer-arith \
            -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
            $(shell $(CC) -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1 && echo -Wno-format-truncation)
CPPFLAGS += -D_GNU_SOURCE -Isrc
CFLAGS   += -std=c17 $(OPT) -g $(WARN) $(SANFLAGS) $(shell pkg-config --cflags $(PKGS))
LDFLAGS  += $(SANFLAGS)
# Full RELRO (the GOT read-only after start) in every build, serve's above
# all.  It cost nothing measurable at start: every shared library rawmail
# loads is itself linked -z now, so lazy binding of our own ~430 PLT slots
# saved nothing (doc/DESIGN.md "Start-up").
LDFLAGS  += -Wl,-z,relro,-z,now
# STATIC_LIBS=1 (build-static/rawmail): libevent, OpenSSL, c-ares and inih
# linked in from their .a files, libc and libidn2 shared.  A process then
# starts in ~1.5 ms instead of ~2.4 ms here (the dynamic loader's work for
# those libraries, OpenSSL's above all).  The sendmail link's
# rawmail-sendmail (below) links no OpenSSL, libevent or c-ares in either
# build.  The price: an OpenSSL (or libevent, c-ares) security update
# reaches rawmail only when it is built again.
# README "Building" and doc/DESIGN.md say more.
STATIC_PKGS = libevent libevent_openssl openssl inih libcares
ifeq ($(STATIC_LIBS),1)
LDLIBS   += -Wl,-Bstatic $(shell pkg-config --libs $(STATIC_PKGS)) -Wl,-Bdynamic \
            $(shell pkg-config --libs libidn2 jansson json-c) -lpthread -ldl
else
LDLIBS   += $(shell pkg-config --libs $(PKGS))
endif
# libxcrypt (crypt_r, crypt_gensalt_rn) for the users file's hashes
# (src/auth/): shared in every build, as libc is.
LDLIBS   += -lcrypt
# The rawmail binary of a shared build on x86-64 does not link libssl,
# libcrypto and libevent_openssl: it loads them when first needed
# (src/net/ossl_lazy.h; every command but send at its start), through
# stubs scripts/ossl_stubs writes from the functions the objects call.
# That is ~0.9 ms off the start of each rawmail send --tls none.  A
# package must still depend on libssl3 and libevent-openssl (shlibdeps
# cannot see a dlopen).  LAZY_OSSL=0 links them as before.
LAZY_OSSL ?= $(if $(filter x86_64,$(shell uname -m)),$(if $(filter 1,$(STATIC_LIBS)),0,1),0)
ifeq ($(LAZY_OSSL),1)
RAWMAIL_LDLIBS = $(shell pkg-config --libs $(filter-out libevent_openssl openssl,$(PKGS))) -lcrypt
RAWMAIL_STUBS  = $(BUILD)/obj/ossl_stubs.o
else
RAWMAIL_LDLIBS = $(LDLIBS)
RAWMAIL_STUBS  =
endif
# The MQTT bridge (src/mqtt/, issue 12), shared in every build:
# libmosquitto publishes (src/mqtt/link.c), Eclipse Paho's asynchronous C
# client with TLS receives send requests (src/mqtt/bridge_receiver.c;
# libpaho-mqtt-dev ships no .pc file).  Why two: doc/DESIGN.md "The MQTT
# bridge".
# Neither is linked: the bridge process loads them (src/mqtt/libs.c, dlopen)
# so that no other process pays for them at start, and so that the
# STATIC_LIBS build loads no shared OpenSSL (they need it).  A package must
# still depend on libmosquitto1 and libpaho-mqtt1.3 (shlibdeps cannot see
# a dlopen).  Only their headers are needed here.
CFLAGS   += $(shell pkg-config --cflags libmosquitto)
# rawmail-sendmail, the program the sendmail link runs (one process per
# message: cron, PHP): only inih and libidn2, no OpenSSL, libevent or
# c-ares, whose loading was most of its start-up (src/cli/sendmail_main.c).
# It links the objects it needs from $(BUILD)/librawmail.a, so an object
# that came to need the delivery engine would fail its link here.
SENDMAIL_PKGS = inih libidn2
ifeq ($(STATIC_LIBS),1)
SENDMAIL_LDLIBS = -Wl,-Bstatic $(shell pkg-config --libs inih) -Wl,-Bdynamic \
                  $(shell pkg-config --libs libidn2)
else
SENDMAIL_LDLIBS = $(shell pkg-config --libs $(SENDMAIL_PKGS))
endif

MODULES   = util smtp dns msg client store net server queue auth check mqtt cli
SRC_util   := $(wildcard src/util/*.c)
SRC_smtp   := $(wildcard src/smtp/*.c)
SRC_dns    := $(wildcard src/dns/*.c)
SRC_msg    := $(wildcard src/msg/*.c)
SRC_client := $(wildcard src/client/*.c)
SRC_store  := $(wildcard src/store/*.c)
SRC_net    := $(wildcard src/net/*.c)
SRC_server := $(wildcard src/server/*.c)
SRC_queue  := $(wildcard src/queue/*.c)
SRC_auth   := $(wildcard src/auth/*.c)
SRC_check  := $(wildcard src/check/*.c)
SRC_mqtt   := $(wildcard src/mqtt/*.c)
SRC_cli    := $(filter-out src/cli/main.c src/cli/sendmail_main.c,$(wildcard src/cli/*.c))
obj = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(1))
OBJ_ALL   := $(foreach m,$(MODULES),$(call obj,$(SRC_$(m))))

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all unit tools fuzz fuzz-long check install install-sendmail clean lint
all: $(BUILD)/rawmail $(BUILD)/rawmail-sendmail $(BUILD)/sendmail

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/rawmail: $(call obj,src/cli/main.c) $(OBJ_ALL) $(RAWMAIL_STUBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(RAWMAIL_LDLIBS)

$(BUILD)/gen/ossl_stubs.S: scripts/ossl_stubs $(call obj,src/cli/main.c) $(OBJ_ALL)
	@mkdir -p $(dir $@)
	scripts/ossl_stubs $@ $(shell pkg-config --variable=libdir openssl) \
		$(call obj,src/cli/main.c) $(OBJ_ALL)

$(BUILD)/obj/ossl_stubs.o: $(BUILD)/gen/ossl_stubs.S
	$(CC) -c -o $@ $<

$(BUILD)/librawmail.a: $(OBJ_ALL)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/rawmail-sendmail: $(call obj,src/cli/sendmail_main.c) $(BUILD)/librawmail.a
	$(CC) $(LDFLAGS) -o $@ $^ $(SENDMAIL_LDLIBS)

# As installed: sendmail -> rawmail-sendmail, which finds rawmail next to it.
$(BUILD)/sendmail: $(BUILD)/rawmail-sendmail
	ln -sf rawmail-sendmail $@

# A unit test named test_MODULE_thing links only MODULE and what it depends
# on (dependencies point one way: see doc/ and ../shared/DESIGN.md), so a
# half-written sibling module never breaks another module's tests.
DEPS_util   = util
DEPS_smtp   = smtp util
DEPS_dns    = dns util
DEPS_msg    = msg util
DEPS_client = client smtp dns net util
DEPS_store  = store queue msg smtp auth util
DEPS_net    = net util
DEPS_server = server mqtt smtp dns store queue msg net auth util
DEPS_queue  = queue msg smtp util
DEPS_auth   = auth util
# check: the deliverability tests; never server or store (issue 11)
DEPS_check  = check dns net msg smtp util
# mqtt: the bridge (issue 12); store for outbox.h only (the events the
# store records at commit), queue for the spool (requests become entries),
# dns for dns_domain_to_ascii (requests' recipients in A-labels, as send's)
DEPS_mqtt   = mqtt store queue msg smtp dns auth util
DEPS_cli    = cli server client queue auth check mqtt msg smtp dns store net util
# The auth process end to end is driven through the smtp process's side
# (server/auth_client.c and the txnmap it keeps its queries in).
$(BUILD)/tests/test_auth_e2e: $(call obj,src/server/auth_client.c src/store/txnmap.c)
test_module = $(word 2,$(subst _, ,$(notdir $(1))))
.SECONDEXPANSION:
$(BUILD)/tests/test_%: tests/unit/test_%.c $$(foreach m,$$(DEPS_$$(call test_module,$$@)),$$(call obj,$$(SRC_$$(m))))
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $^ $(LDFLAGS) $(LDLIBS) $(shell pkg-config --libs cmocka)

# Test tools: small programs the integration tests drive (tests/tools/X.c
# -> build/tests/tool_X), linking the library modules of rawmail send and
# the queue.
TOOL_SRC  := $(wildcard tests/tools/*.c)
TOOL_BIN  := $(patsubst tests/tools/%.c,$(BUILD)/tests/tool_%,$(TOOL_SRC))
tools: $(TOOL_BIN)
$(BUILD)/tests/tool_%: tests/tools/%.c $(call obj,$(SRC_client) $(SRC_queue) $(SRC_smtp) $(SRC_dns) $(SRC_net) $(SRC_msg) $(SRC_util))
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# libFuzzer harnesses: tests/fuzz/fuzz_TEST.c fuzzes what the unit test
# tests/unit/test_TEST.c tests, and takes its seeds from it.
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_CFLAGS = -std=c17 -O1 -g -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# util/config_file.c wraps inih: harnesses that link util need it too.
FUZZ_LDLIBS = $(shell pkg-config --libs inih jansson json-c libidn2)
fuzz: $(FUZZ_BIN)
# Each harness links the pure code it fuzzes: the protocol core, or the
# store's wire format (frame.c, without its libevent reader).
FUZZ_LIBSRC_store_frame = src/store/frame.c $(SRC_util)
FUZZ_LIBSRC_store_outbox = src/store/outbox.c src/util/buf.c
# msg/ without the DKIM files that call OpenSSL (harnesses link no OpenSSL).
SRC_msg_pure = $(filter-out src/msg/dkim_key.c src/msg/dkim_sign.c,$(SRC_msg))
FUZZ_LIBSRC_msg_headers = $(SRC_msg_pure) $(SRC_util)
FUZZ_LIBSRC_queue_envelope = src/queue/envelope.c $(SRC_util)
FUZZ_LIBSRC_queue_drop = src/queue/maildrop.c src/queue/envelope.c $(SRC_smtp) $(SRC_util)
FUZZ_LIBSRC_msg_dsn = $(SRC_msg_pure) $(SRC_util)
FUZZ_LIBSRC_msg_aliases = src/msg/aliases.c
FUZZ_LIBSRC_msg_loop = src/msg/loop.c
FUZZ_LIBSRC_msg_qualify = src/msg/header_qualify.c src/util/buf.c
FUZZ_LIBSRC_auth_users = src/auth/users.c
FUZZ_LIBSRC_server_networks = src/server/networks.c src/util/ip_text.c src/util/text.c
FUZZ_LIBSRC_auth_wire = src/auth/wire.c src/auth/users.c src/util/netkey.c
FUZZ_LIBSRC_client_relay = src/client/relay.c $(SRC_util)
FUZZ_LIBSRC_dns_spf_record = src/dns/spf_record.c src/dns/spf_macro.c
FUZZ_LIBSRC_check_pure = src/check/dmarc.c
FUZZ_LIBSRC_msg_dkim_record = src/msg/dkim_record.c src/msg/dkim_canon.c src/util/buf.c src/util/text.c
# MQTT send requests: the parser and result builder, the message module
# they compose with, the address parser, and dns/mx.c for its IDNA
# conversion (libidn2, no c-ares call).
FUZZ_LIBSRC_mqtt_request = $(wildcard src/mqtt/request*.c) $(SRC_msg_pure) src/smtp/address.c \
                           src/dns/mx.c src/util/buf.c src/util/text.c src/util/sha256.c \
                           src/util/ip_text.c src/util/hostname.c
# The MQTT event builder (issue 12) and the message reading it uses: no
# broker, no outbox file code (outbox.h only), json-c (and jansson, which
# reads the events back) from FUZZ_LDLIBS.
FUZZ_LIBSRC_mqtt_event = $(wildcard src/mqtt/event*.c src/msg/decode*.c) src/msg/mime_read.c \
                         src/msg/mime_param.c src/msg/mime_walk.c src/msg/base64.c src/util/buf.c \
                         src/util/text.c
fuzz_libsrc = $(or $(FUZZ_LIBSRC_$(1)),$(SRC_smtp) $(SRC_util))
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(call fuzz_libsrc,$$*)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(call fuzz_libsrc,$*) $(FUZZ_LDLIBS)
fuzz-long: fuzz
	tests/fuzz/run 600

check:
	tests/run

lint:
	tests/lint

# Where `make install` puts things.  The sendmail (-> rawmail-sendmail),
# mailq and newaliases (-> rawmail) links go in SBINDIR; the one programs
# call by its path, /usr/sbin/sendmail, only with `make install-sendmail`
# (SENDMAIL_PATH, -> rawmail-sendmail), which refuses to replace
# another MTA's file.  The example configuration is copied to
# SYSCONFDIR/rawmail.conf only when there is none (all of it is comments:
# it changes no setting until edited).
BINDIR         ?= $(PREFIX)/bin
SBINDIR        ?= $(PREFIX)/sbin
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/rawmail
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR     ?= /etc
SENDMAIL_PATH  ?= /usr/sbin/sendmail
# The system's spool and its maildrop, through which users who are not
# root queue mail (src/queue/maildrop.h): serve's queue process and root's
# queue run give both to the spool's owner and keep their modes.
SPOOLDIR       ?= /var/spool/rawmail

# Shell text: with link set, sets what to "" when link is absent or a
# link that leads to a rawmail (or rawmail-sendmail), else to what is
# there (another program's).
link_what = what=''; \
	if [ -L "$$link" ]; then \
		case "$$(basename "$$(readlink "$$link")")" in rawmail|rawmail-sendmail) ours=1;; *) ours=;; esac; \
		if [ "$$(readlink -f "$$link")" != "$$(readlink -f "$$bin")" ] && [ -z "$$ours" ]; then \
			what="a link to $$(readlink "$$link")"; fi; \
	elif [ -e "$$link" ]; then what="a file of another program (Postfix, Exim, ...)"; fi

# $(call install_link,PATH,ON_CONFLICT,PROGRAM): a relative symbolic link
# PATH -> the installed PROGRAM (rawmail or rawmail-sendmail; relative, so
# a DESTDIR tree is whole by itself), unless another program's file is
# there: ON_CONFLICT "warn" leaves it and says so, "refuse" stops with an
# error, "check" only does that.
define install_link
	@link='$(DESTDIR)$(1)'; bin='$(DESTDIR)$(BINDIR)/$(3)'; $(link_what); \
	if [ -n "$$what" ] && [ '$(2)' != warn ]; then \
		echo "make: $$link is $$what, not rawmail: refusing to replace it." >&2; \
		echo "make: remove that mail system first (e.g. apt-get remove postfix), then run make install-sendmail again." >&2; \
		exit 1; \
	elif [ -n "$$what" ]; then \
		echo "make: left $$link alone: it is $$what (see make install-sendmail)" >&2; \
	elif [ '$(2)' != check ]; then \
		install -d "$$(dirname "$$link")" && ln -sfr "$$bin" "$$link" && \
		echo "  $$link -> $$(readlink "$$link")"; \
	fi
endef

# rawmail-sendmail goes next to rawmail: it runs the rawmail in its own
# directory (for a queue run, and for every mode it hands over).
install: $(BUILD)/rawmail $(BUILD)/rawmail-sendmail
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 755 $(BUILD)/rawmail $(DESTDIR)$(BINDIR)/rawmail
	install -m 755 $(BUILD)/rawmail-sendmail $(DESTDIR)$(BINDIR)/rawmail-sendmail
	$(call install_link,$(SBINDIR)/sendmail,warn,rawmail-sendmail)
	$(call install_link,$(SBINDIR)/mailq,warn,rawmail)
	$(call install_link,$(SBINDIR)/newaliases,warn,rawmail)
	install -m 644 doc/rawmail.1 $(DESTDIR)$(MANDIR)/man1/rawmail.1
	install -m 644 doc/rawmail.conf.5 $(DESTDIR)$(MANDIR)/man5/rawmail.conf.5
	install -m 644 contrib/rawmail.conf.example README.md $(DESTDIR)$(DOCDIR)/
	for unit in rawmail.service rawmail-queue.service; do \
		sed 's|@BINDIR@|$(BINDIR)|g' contrib/systemd/$$unit.in > $(DESTDIR)$(SYSTEMDUNITDIR)/$$unit && \
		chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$unit || exit 1; \
	done
	install -m 644 contrib/systemd/rawmail-queue.timer $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -d -m 711 $(DESTDIR)$(SPOOLDIR)
	install -d -m 3733 $(DESTDIR)$(SPOOLDIR)/maildrop
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/rawmail.conf ]; then \
		echo "  kept $(DESTDIR)$(SYSCONFDIR)/rawmail.conf (the example is in $(DOCDIR))"; \
	else \
		install -D -m 644 contrib/rawmail.conf.example $(DESTDIR)$(SYSCONFDIR)/rawmail.conf && \
		echo "  $(DESTDIR)$(SYSCONFDIR)/rawmail.conf (every line commented: the defaults)"; \
	fi

# Programs call /usr/sbin/sendmail by that path.  Checked before anything
# is installed, so a refusal leaves the system as it was.
install-sendmail:
	$(call install_link,$(SENDMAIL_PATH),check,rawmail-sendmail)
	@$(MAKE) --no-print-directory install
	$(call install_link,$(SENDMAIL_PATH),refuse,rawmail-sendmail)

clean:
	rm -rf build build-asan build-static build-fuzz

-include $(shell find $(BUILD) build-fuzz -name '*.d' 2>/dev/null)
