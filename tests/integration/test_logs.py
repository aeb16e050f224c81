"""What the server's log says about a transaction, and how its processes
are named in ps (issue 8 item 18).

Postfix logs from=, to= with each recipient's outcome, and helo= (on its
reject lines); rawmail's log had only from= and a recipient count.  Values
from the client are escaped (DESIGN.md, "Logs"), so a hostile HELO can
neither forge a field nor break a line.
"""

import re
import signal
import subprocess
import time

from helpers import crlf
from robust_util import children, rstart_server, server_roles  # noqa: F401  (fixture)

SENDER = "sender@client.test"
# Printable ASCII is all a HELO may hold (src/smtp/command.c); of it, '"',
# '\' and '=' must be escaped, or the value could end early or fake a field.
ODD_HELO = 'odd"helo\\x=y'


def parse_fields(line):
    """A log line's key=value fields, quoted values unescaped ("..." with
    \\" \\\\ and \\xNN), as {key: value}."""
    fields = {}
    i = 0
    n = len(line)
    while i < n:
        m = re.compile(r"\s*([a-z_]+)=").match(line, i)
        if not m:
            i = line.find(" ", i)
            if i < 0:
                break
            i += 1
            continue
        key = m.group(1)
        i = m.end()
        if i < n and line[i] == '"':
            i += 1
            out = []
            while i < n and line[i] != '"':
                if line[i] == "\\":
                    if line[i + 1] == "x":
                        out.append(chr(int(line[i + 2:i + 4], 16)))
                        i += 4
                        continue
                    out.append(line[i + 1])
                    i += 2
                    continue
                out.append(line[i])
                i += 1
            assert i < n, f"unterminated quoted value in {line!r}"
            i += 1
            fields[key] = "".join(out)
        else:
            j = line.find(" ", i)
            j = n if j < 0 else j
            fields[key] = line[i:j]
            i = j
    return fields


def events(log, event, session=None):
    out = []
    for line in log.splitlines():
        if f" event={event} " not in line + " ":
            continue
        f = parse_fields(line)
        if f.get("event") == event and (session is None or f.get("session") == session):
            out.append((line, f))
    return out


def test_log_names_sender_each_recipient_and_helo(rstart_server):
    srv = rstart_server()
    c = srv.connect()
    assert c.cmd("EHLO " + ODD_HELO).code == 250
    assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    refused = c.cmd('RCPT TO:<"x y\\"z"@elsewhere.test>')
    assert refused.code == 554, refused
    assert c.cmd("DATA").code == 354
    c.send(crlf("Subject: logged\n\nhello\n.\n"))
    r = c.read_reply()
    assert r.code == 250, r
    qid = re.search(r"queued as (\S+)", r.text).group(1)
    c.cmd("QUIT")
    c.close()

    deadline = time.monotonic() + 5
    while True:
        log = srv.log()
        accepted = [f for _, f in events(log, "accepted") if f.get("qid") == qid]
        if accepted:
            break
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.05)
    session = accepted[0]["session"]

    mail = events(log, "mail", session)
    assert len(mail) == 1, log[-3000:]
    line, f = mail[0]
    assert f["from"] == SENDER and f["qid"] == qid, line
    assert f["helo"] == ODD_HELO, line
    # The raw line holds the HELO only escaped: no field forged from it.
    assert ' y=' not in line and 'helo="odd\\"helo\\\\x=y"' in line, line

    rcpts = events(log, "rcpt", session)
    assert len(rcpts) == 2, log[-3000:]
    (l1, f1), (l2, f2) = rcpts
    assert f1["to"] == "bob@example.test" and f1["code"] == "250", l1
    assert f1["status"] == "2.1.5" and f1["qid"] == qid, l1
    assert f2["to"] == '"x y\\"z"@elsewhere.test', l2
    assert f2["code"] == "554" and f2["status"] == "5.7.1" and f2["qid"] == qid, l2
    assert f2["text"] == refused.text.split(" ", 1)[1], (l2, refused)
    assert accepted[0]["rcpts"] == "1"
    for line in log.splitlines():
        assert all(ch >= " " for ch in line), repr(line)


def _ps_args(pid):
    return subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True,
                          text=True, check=True).stdout.strip()


def _comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def test_processes_named_in_ps(rstart_server):
    srv = rstart_server()
    roles = server_roles(srv.main_pid, srv.port)
    assert len(roles["smtp"]) == 1 and len(roles["store"]) == 1, roles
    names = {
        srv.main_pid: "rawmail: parent",
        roles["smtp"][0]: "rawmail: smtp",
        roles["store"][0]: "rawmail: store",
    }
    for pid, want in names.items():
        assert _ps_args(pid) == want, (pid, _ps_args(pid), want)
        assert _comm(pid) == want[:15], (pid, _comm(pid), want)
    # The parent still knows its settings (they were moved, not lost): a
    # reload re-applies the flags and the new children are named too.
    srv.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "event=reloaded" not in srv.log():
        assert time.monotonic() < deadline, srv.log()[-3000:]
        time.sleep(0.05)
    for pid in children(srv.main_pid):
        assert _ps_args(pid) in ("rawmail: smtp", "rawmail: store"), _ps_args(pid)
    srv.assert_alive()
    c = srv.session()
    assert c.mail_transaction(SENDER, ["bob@example.test"],
                              crlf("Subject: after reload\n\nhi\n")).code == 250
    c.close()
