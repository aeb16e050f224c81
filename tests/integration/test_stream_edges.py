"""The edges of the smtp process's plaintext stream (src/server/stream.c):
its read interest is edge-triggered and stays registered while the session
waits (for the store, a name, the auth process), so every way input can
arrive around a pause must still be read, once, and the client's end must
be seen even when it comes with the last data and raises no edge of its own.
Each case uses a raw socket and shuts its sending side down (a half-close:
it still reads), so that a lost edge shows as a missing reply or a session
left open until the 300 s timeout, not as a slow test."""

import socket
import time

from helpers import SMTPConn, dot_stuff, mailbox_messages, sample_message

SENDER = "sender@client.test"


def half_close(c):
    c.sock.shutdown(socket.SHUT_WR)


def closed_within(c, seconds):
    """Everything the server still sends; asserts it closes in time."""
    t0 = time.monotonic()
    rest = c.read_until_closed(timeout=seconds)
    return rest, time.monotonic() - t0


def test_commands_and_end_in_one_segment(server):
    """EHLO and NOOP, then the end of the stream at once: both answered, then
    the session ends without waiting for any timeout."""
    with SMTPConn(server.host, server.port) as c:
        assert c.read_reply().code == 220
        c.send(b"EHLO a.test\r\nNOOP\r\n")
        half_close(c)
        rest, took = closed_within(c, 5)
    lines = [l for l in rest.split(b"\r\n") if l]
    assert lines[-1].startswith(b"250 "), rest
    assert any(l.startswith(b"250-") for l in lines), rest   # EHLO's keywords
    assert sum(l.startswith(b"250 ") for l in lines) == 2, rest
    assert took < 5


def test_message_dot_quit_and_end_while_the_store_commits(server):
    """The final dot, QUIT and the end of the stream in one write: the session
    pauses its input while the store commits (nothing read, nothing timed),
    then reads on: 250 for the message, 221, and the close."""
    msg = sample_message("dot, quit and end together")
    with SMTPConn(server.host, server.port) as c:
        assert c.read_reply().code == 220
        c.send(b"EHLO a.test\r\nMAIL FROM:<" + SENDER.encode() + b">\r\n"
               b"RCPT TO:<user@example.test>\r\nDATA\r\n")
        replies = c.read_replies(4)
        assert [r.code for r in replies] == [250, 250, 250, 354], replies
        c.send(dot_stuff(msg) + b".\r\nQUIT\r\n")
        half_close(c)
        rest, took = closed_within(c, 5)
    assert rest.startswith(b"250 2.0.0 "), rest
    assert b"\r\n221 " in rest, rest
    assert len(mailbox_messages(server.mailroot, "user", wait=2)) == 1


def test_input_that_arrives_while_paused_is_read(server):
    """A client that pipelines past the final dot (allowed: RFC 2920 ends a
    group at DATA's 354, not at the dot) sends the next transaction while
    the first commits.  Its arrival raises the socket's only edge while
    the session reads nothing; it must be read once the 250 is out."""
    first, second = sample_message("first"), sample_message("second")
    with SMTPConn(server.host, server.port) as c:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO a.test").code == 250
        for n, msg in enumerate((first, second)):
            c.send(b"MAIL FROM:<" + SENDER.encode() + b">\r\nRCPT TO:<user@example.test>\r\n"
                   b"DATA\r\n")
            assert [r.code for r in c.read_replies(3)] == [250, 250, 354]
            if n == 0:
                # The dot and, in a second segment a moment later (while
                # the store syncs), the next MAIL's first bytes.
                c.send(dot_stuff(msg) + b".\r\n")
                c.send(b"NOOP\r\n")
                assert c.read_reply().code == 250      # the message
                assert c.read_reply().code == 250      # the NOOP
            else:
                c.send(dot_stuff(msg) + b".\r\n")
                assert c.read_reply().code == 250
        assert c.cmd("QUIT").code == 221
    assert len(mailbox_messages(server.mailroot, "user", wait=2)) == 2


def test_end_without_quit_mid_command_closes_at_once(server):
    """Half a command and the end: no reply is owed, and the session must
    end now (the end came with data, under one edge)."""
    with SMTPConn(server.host, server.port) as c:
        assert c.read_reply().code == 220
        c.send(b"EHLO a.te")
        half_close(c)
        rest, took = closed_within(c, 5)
    assert rest == b"", rest
    assert took < 5
