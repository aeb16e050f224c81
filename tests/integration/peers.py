"""Scripted SMTP peers on loopback, for tests of rawmail's client side
(tests/tools/deliver.c now, `rawmail send` later).

ScriptedPeer plays the server for one connection: each command line the
client sends goes to a script that returns the reply (or None to close).
With a `tls_context` it also plays STARTTLS for real: after a 220 to
STARTTLS it runs the TLS handshake and goes on reading commands through
TLS, recording the SNI the client sent and whether the handshake worked.
"""

import socket
import threading


def silent_listener():
    """A listening socket on 127.0.0.1 that never accepts by itself."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    return s


class ScriptedPeer:
    """A one-connection SMTP peer on loopback: answers each command line
    from `script(line) -> bytes|None` (None: close); greets with `greeting`.

    tls_context (an ssl.SSLContext for the server side), when given, makes
    a reply starting with 220 to STARTTLS start a real handshake.  Then:
      sni           the server name the client sent (None: no SNI),
                    recorded by the context's sni_callback (which this
                    replaces); sni_seen tells whether the callback ran
      tls_version   "TLSv1.3" etc. once the handshake completed
      tls_error     the handshake's exception text if it failed
      received_tls  the octets received through TLS
    `received` holds everything received, plaintext and decrypted."""

    def __init__(self, script, greeting=b"220 peer.test ESMTP\r\n", tls_context=None):
        self.sock = silent_listener()
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.greeting = greeting
        self.received = b""
        self.received_tls = b""
        self.tls_context = tls_context
        self.sni = None
        self.sni_seen = False
        self.tls_version = None
        self.tls_error = None
        if tls_context is not None:
            tls_context.sni_callback = self._on_sni
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_sni(self, sslobj, name, ctx):
        self.sni_seen = True
        self.sni = name
        return None

    def _start_tls(self, c):
        try:
            t = self.tls_context.wrap_socket(c, server_side=True)
        except OSError as e:     # ssl.SSLError is an OSError
            self.tls_error = str(e)
            return None
        self.tls_version = t.version()
        return t

    def _run(self):
        self.sock.settimeout(10)
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        c.settimeout(10)
        buf = b""
        in_data = False
        tls = False
        try:
            c.sendall(self.greeting)
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                self.received += chunk
                if tls:
                    self.received_tls += chunk
                buf += chunk
                while b"\r\n" in buf:
                    line, _, buf = buf.partition(b"\r\n")
                    if in_data:
                        if line != b".":
                            continue
                        in_data = False
                        line = b"<dot>"
                    reply = self.script(line)
                    if reply is None:
                        c.close()
                        return
                    if line == b"DATA" and reply.startswith(b"354"):
                        in_data = True
                    c.sendall(reply)
                    if (line == b"STARTTLS" and reply.startswith(b"220")
                            and self.tls_context is not None and not tls):
                        # Plaintext pipelined after STARTTLS is dropped, as a
                        # server must (RFC 3207 §4.2).
                        buf = b""
                        t = self._start_tls(c)
                        if t is None:
                            return
                        c = t
                        tls = True
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.thread.join(10)
        self.sock.close()


def ehlo_ok(line, extra=None):
    """A script answering a plain successful transaction: EHLO (with
    PIPELINING), MAIL, RCPT, DATA, QUIT; other lines go to `extra`, or get
    500."""
    if line.startswith(b"EHLO"):
        return b"250-peer.test\r\n250 PIPELINING\r\n"
    if line.startswith(b"MAIL") or line.startswith(b"RCPT"):
        return b"250 2.1.0 ok\r\n"
    if line == b"DATA":
        return b"354 go\r\n"
    if line == b"QUIT":
        return b"221 bye\r\n"
    return extra(line) if extra else b"500 what\r\n"
