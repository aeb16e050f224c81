"""Timed process launches for bench/send.

Starting a process from bash costs a full fork() of the shell, which on a
paravirtualised machine (page tables through the hypervisor) is several
milliseconds and adds noise; subprocess uses vfork/posix_spawn, so what is
measured is closer to the client's own cost: exec, its work, its exit.  Every
command, /bin/true included, is started the same way.

A command file has one command per line: a label, then the argv, separated by
tabs (no argument here holds a tab or a newline).

    send_timer.py run  --round R --sends N --stdin FILE --samples FILE --errdir DIR CMDFILE
        N passes over the commands, in file order (interleaved: each one's
        i-th run right after the others'); appends "LABEL R I MICROSECONDS RC"
        per run to the samples file; each command's stderr is appended to
        DIR/<label with _ for spaces>.err.
    send_timer.py seq  --stdin FILE --errfile FILE CMDFILE
        each command once, in order; prints "MICROSECONDS FAILED" for the whole
        sequence; the stderr of each failed run goes to the error file as one
        line "exit RC: TEXT".

SIGTERM ends it at once, killing the command under way (bench/send's cleanup).
"""

import argparse
import os
import signal
import subprocess
import sys
import time


def read_commands(path):
    cmds = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split("\t")
            cmds.append((fields[0], fields[1:]))
    return cmds


def launch(argv, stdin_path, stderr):
    """(microseconds, exit status) of one run; negative status: killed by a signal."""
    with open(stdin_path, "rb") as fin:
        t0 = time.perf_counter_ns()
        p = subprocess.run(argv, stdin=fin, stdout=subprocess.DEVNULL, stderr=stderr)
        t1 = time.perf_counter_ns()
    return (t1 - t0) // 1000, p.returncode


def cmd_run(a):
    cmds = read_commands(a.cmdfile)
    os.makedirs(a.errdir, exist_ok=True)
    errs = {}
    try:
        for label, _ in cmds:
            if label not in errs:
                errs[label] = open(os.path.join(a.errdir, label.replace(" ", "_") + ".err"), "ab")
        with open(a.samples, "a", encoding="utf-8") as out:
            for i in range(1, a.sends + 1):
                for label, argv in cmds:
                    us, rc = launch(argv, a.stdin, errs[label])
                    out.write(f"{label} {a.round} {i} {us} {rc}\n")
                out.flush()
    finally:
        for f in errs.values():
            f.close()


def cmd_seq(a):
    cmds = read_commands(a.cmdfile)
    failed = 0
    with open(a.errfile, "a", encoding="utf-8") as errf:
        t0 = time.perf_counter_ns()
        for _, argv in cmds:
            with open(a.stdin, "rb") as fin:
                p = subprocess.run(argv, stdin=fin, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
            if p.returncode != 0:
                failed += 1
                text = p.stderr.decode("utf-8", "replace").replace("\n", " ").strip()
                errf.write(f"exit {p.returncode}: {text}\n")
        t1 = time.perf_counter_ns()
    print(f"{(t1 - t0) // 1000} {failed}")


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run")
    r.add_argument("--round", type=int, required=True)
    r.add_argument("--sends", type=int, required=True)
    r.add_argument("--stdin", required=True)
    r.add_argument("--samples", required=True)
    r.add_argument("--errdir", required=True)
    r.add_argument("cmdfile")
    s = sub.add_parser("seq")
    s.add_argument("--stdin", required=True)
    s.add_argument("--errfile", required=True)
    s.add_argument("cmdfile")
    a = ap.parse_args()
    if a.mode == "run":
        cmd_run(a)
    else:
        cmd_seq(a)


if __name__ == "__main__":
    main()
