"""Scripted SMTP peers on loopback, for tests of rawmail's client side
(tests/tools/deliver.c, and `rawmail send`: test_send_peers.py).

ScriptedPeer plays the server: each command line the client sends goes to
a script that returns the reply (or None to close).  With a `tls_context`
it also plays STARTTLS for real: after a 220 to STARTTLS it runs the TLS
handshake and goes on reading commands through TLS, recording the SNI the
client sent and whether the handshake worked.

By default it serves one connection on 127.0.0.1 at a port of its own;
`host`, `port` and `connections` make it listen elsewhere (every 127.x.y.z
reaches lo, so several peers may share one port number on 127.0.0.2,
127.0.0.3 ..., as MX hosts of one domain do) and serve several connections
one after the other, each recorded in `conns`.
"""

import select
import socket
import threading
import time


def silent_listener(host="127.0.0.1", port=0):
    """A listening socket (on 127.0.0.1 unless told) that never accepts by
    itself."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(4)
    return s


class PeerConn:
    """What one connection to a ScriptedPeer saw.

      index        0 for the first connection, 1 for the next...
      commands     the command lines received (bytes, no CRLF), in order;
                   the end of a message shows as b"<dot>", its lines are
                   in `body` instead
      body         the message lines received (CRLF-terminated, still
                   dot-stuffed), all DATA of the connection together
      received     every octet received (plaintext and decrypted)
      client_hello what arrived after the 220 to STARTTLS when the peer
                   answers it with garbage (starttls_garbage)
      closed_by    "client" (EOF), "peer" (the script or the peer's rules
                   closed it), or "error"
      state        a dict for the script's own use (with_conn=True)
    """

    def __init__(self, index):
        self.index = index
        self.commands = []
        self.body = bytearray()
        self.received = bytearray()
        self.client_hello = b""
        self.closed_by = None
        self.state = {}

    def __repr__(self):
        return (f"<conn {self.index} commands={self.commands!r} body={len(self.body)} octets "
                f"closed_by={self.closed_by}>")


class ScriptedPeer:
    """An SMTP peer on loopback: answers each command line from
    `script(line) -> bytes|None` (None: close; b"": say nothing, go on
    reading); greets with `greeting` (bytes; b"" sends nothing; a callable
    gets the PeerConn and returns the bytes, or None to close at once).

    tls_context (an ssl.SSLContext for the server side), when given, makes
    a reply starting with 220 to STARTTLS start a real handshake.  Then:
      sni           the server name the client sent (None: no SNI),
                    recorded by the context's sni_callback (which this
                    replaces); sni_seen tells whether the callback ran
      tls_version   "TLSv1.3" etc. once the handshake completed
      tls_error     the handshake's exception text if it failed
      received_tls  the octets received through TLS
    `received` holds everything received, plaintext and decrypted, over
    every connection.

    Options added for `rawmail send`'s tests (the defaults keep the old
    behaviour):
      host, port       where to listen (port 0: a free one; `self.port`)
      connections      how many connections to serve, one at a time
      with_conn        call script(line, conn) with the PeerConn
      trickle          seconds to sleep between the octets of every reply
                       (TCP_NODELAY: each octet its own segment)
      starttls_garbage without tls_context: after a 220 to STARTTLS, read
                       the client's first TLS bytes (the ClientHello), send
                       these octets instead of a handshake, and close
      body_line        called with each message line (CRLF kept) while in
                       DATA; a None return closes the connection there
    """

    def __init__(self, script, greeting=b"220 peer.test ESMTP\r\n", tls_context=None,
                 host="127.0.0.1", port=0, connections=1, with_conn=False, trickle=0,
                 starttls_garbage=None, body_line=None, accept_timeout=10):
        self.host = host
        self.sock = silent_listener(host, port)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.greeting = greeting
        self.received = bytearray()
        self.received_tls = b""
        self.tls_context = tls_context
        self.sni = None
        self.sni_seen = False
        self.tls_version = None
        self.tls_error = None
        self.max_connections = connections
        self.with_conn = with_conn
        self.trickle = trickle
        self.starttls_garbage = starttls_garbage
        self.body_line = body_line
        self.accept_timeout = accept_timeout
        self.conns = []
        self._stop = threading.Event()
        if tls_context is not None:
            tls_context.sni_callback = self._on_sni
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def commands(self):
        """Every connection's commands, in order."""
        return [c for conn in self.conns for c in conn.commands]

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

    def _send(self, c, data):
        if not data:
            return
        if not self.trickle:
            c.sendall(data)
            return
        for i in range(len(data)):
            c.sendall(data[i:i + 1])
            time.sleep(self.trickle)

    def _call(self, line, conn):
        if self.with_conn:
            return self.script(line, conn)
        return self.script(line)

    def _run(self):
        deadline = time.monotonic() + self.accept_timeout
        while len(self.conns) < self.max_connections and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                ready, _, _ = select.select([self.sock], [], [], min(0.05, left))
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            conn = PeerConn(len(self.conns))
            self.conns.append(conn)
            self._serve(c, conn)
            # The next connection gets the full wait again.
            deadline = time.monotonic() + self.accept_timeout

    def _serve(self, c, conn):
        c.settimeout(10)
        if self.trickle:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        in_data = False
        tls = False
        try:
            greeting = self.greeting(conn) if callable(self.greeting) else self.greeting
            if greeting is None:
                conn.closed_by = "peer"
                return
            self._send(c, greeting)
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    conn.closed_by = "client"
                    break
                self.received += chunk
                conn.received += chunk
                if tls:
                    self.received_tls += chunk
                buf += chunk
                # Lines are taken by offset and the rest kept once per
                # chunk: re-slicing per line is quadratic in a large body.
                pos = 0
                while True:
                    eol = buf.find(b"\r\n", pos)
                    if eol < 0:
                        del buf[:pos]
                        break
                    line, pos = bytes(buf[pos:eol]), eol + 2
                    if in_data:
                        if line != b".":
                            conn.body += line + b"\r\n"
                            if self.body_line is not None and \
                                    self.body_line(line + b"\r\n") is None:
                                conn.closed_by = "peer"
                                return
                            continue
                        in_data = False
                        line = b"<dot>"
                    conn.commands.append(line)
                    reply = self._call(line, conn)
                    if reply is None:
                        conn.closed_by = "peer"
                        return
                    if line.upper() == b"DATA" and reply.startswith(b"354"):
                        in_data = True
                    self._send(c, reply)
                    if line.upper() == b"STARTTLS" and reply.startswith(b"220") and not tls:
                        if self.tls_context is not None:
                            # Plaintext pipelined after STARTTLS is dropped, as
                            # a server must (RFC 3207 §4.2).
                            buf = bytearray()
                            pos = 0
                            t = self._start_tls(c)
                            if t is None:
                                conn.closed_by = "error"
                                return
                            c = t
                            tls = True
                        elif self.starttls_garbage is not None:
                            c.settimeout(5)
                            conn.client_hello = bytes(buf[pos:]) + c.recv(65536)
                            self._send(c, self.starttls_garbage)
                            conn.closed_by = "peer"
                            return
        except OSError:
            conn.closed_by = conn.closed_by or "error"
        finally:
            c.close()

    def close(self):
        """Stops accepting, waits for the connection being served to end
        (at most 10 s), closes the listener."""
        self._stop.set()
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
