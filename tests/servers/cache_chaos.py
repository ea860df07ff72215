"""A misbehaving Redis or Memcached server on loopback, for the cache plugins'
tests (standard library only).

It understands what the plugins send (Redis: AUTH, SELECT, SET, MSET, DEL,
PING as RESP arrays; Memcached text protocol: set, delete, version, and the
two auto-discovery commands, answered as a plain memcached would) and answers
honestly, except for the replies to data commands (SET, MSET, DEL, set,
delete), which a behaviour replaces:

  ok            honest
  extra         every data reply sent twice
  early         one data reply sent right on connect, then honest
  stale         after each exchange (the marker's reply: PING / version), one
                data reply is held and sent just before the next exchange's
                first reply: a reply left over from the previous batch
  leftover      100 ms after each exchange, one data reply nobody asked for
                (a reused connection then has unread bytes)
  reply:TEXT    every data command answered with TEXT (\\r\\n appended unless
                it already ends with it): NOT_FOUND, OK, END, DELETED, 42,
                :1, $3\\r\\nabc ...
  huge          Redis: "$2000000000\\r\\n" then 1 KiB of 'x' every 20 ms;
                Memcached: "SERVER_ERROR " then 'x' without end, the same way
  drip          the honest reply, one byte every `drip_ms` (default 150)
  reset         half the honest reply, then a TCP reset
  resetafter:N  N honest data replies, then half of the next one and a reset
  halffin       half the honest reply, then FIN
  garbage       64 random bytes (seeded) instead of the reply
  empty         an empty line instead of the reply
  ahead         at the first bytes of a command, the replies of a whole
                one-command exchange (+OK +PONG / STORED VERSION), before the
                command could be complete; then it reads slowly and is mute
  slowread      honest, but reads through a 4 KiB receive buffer, 4 KiB
                at a time (16 KiB) with a 1 ms pause: the client's writes stop
                part-way, anywhere in its buffers
  confighuge    (memcached) `config get cluster` answered by a CONFIG header
                and then 'x' without end, 4 KiB every 10 ms
  configjunk    (memcached) `config get cluster` answered by a CONFIG block
                whose body is not a node list
  silent        from the first data command on, no reply at all (the
                connection stays open)
  oomat:N[,M..] data commands number N, M... (from 0, over the server's
                life) refused as a full Redis refuses them (-OOM, not
                applied; Memcached: SERVER_ERROR out of memory); the others
                honest

`bad_connections`: how many connections (in accept order) misbehave; the
later ones are honest (None: all). The server keeps what honest or not data
commands stored (`stored`: key -> value, a set is applied even when its reply
is bad, as a real server that stored the item and then misbehaved would), and
counts connections and data commands.

Run as a script (python3 cache_chaos.py redis|memcached BEHAVIOUR
[--bad N] [--parent-pid P]) it prints its port and serves until killed.
"""

import os
import random
import socket
import sys
import threading
import time


class ChaosServer:
    def __init__(self, protocol, behaviour="ok", bad_connections=None, drip_ms=150,
                 seed=1):
        assert protocol in ("redis", "memcached")
        self.protocol = protocol
        self.behaviour = behaviour
        self.bad_connections = bad_connections
        self.drip_ms = drip_ms
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stored = {}
        self.connections = 0
        self.data_commands = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if behaviour == "slowread":  # accepted sockets inherit it
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self.stopping.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.thread.join(5)

    # ---- plumbing ----

    def _accept(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                index = self.connections
                self.connections += 1
                self.conns.append(c)
            bad = self.bad_connections is None or index < self.bad_connections
            threading.Thread(target=self._serve, args=(c, bad), daemon=True).start()

    def _serve(self, c, bad):
        st = {"bad": bad, "held": 0, "buf": b"", "c": c}
        try:
            if bad and self.behaviour == "early":
                c.sendall(self._ok_reply())
            if bad and self.behaviour == "ahead":
                if not self._recv(st):
                    return
                c.sendall(b"+OK\r\n+PONG\r\n" if self.protocol == "redis"
                          else b"STORED\r\nVERSION 1.6.99-chaos\r\n")
                time.sleep(0.5)
                while not self.stopping.is_set() and self._recv(st):
                    st["buf"] = b""
                return
            while not self.stopping.is_set():
                cmd = self._read_command(st)
                if cmd is None:
                    return
                if not self._answer(st, cmd):
                    return
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _recv(self, st):
        if self.behaviour == "slowread":
            time.sleep(0.001)
        d = st["c"].recv(16384 if self.behaviour == "slowread" else 65536)
        if not d:
            return False
        st["buf"] += d
        return True

    def _ok_reply(self):
        return b"+OK\r\n" if self.protocol == "redis" else b"STORED\r\n"

    # ---- commands ----

    def _read_command(self, st):
        """One command: (name, args) with name upper-case, or None at EOF."""
        if self.protocol == "redis":
            return self._read_resp(st)
        return self._read_memcached(st)

    def _read_resp(self, st):
        while True:
            b = st["buf"]
            parsed = _parse_resp_array(b)
            if parsed is not None:
                args, used = parsed
                st["buf"] = b[used:]
                return args[0].upper().decode(), args[1:]
            if not self._recv(st):
                return None

    def _read_memcached(self, st):
        while True:
            b = st["buf"]
            eol = b.find(b"\r\n")
            if eol >= 0:
                line = b[:eol].split()
                name = line[0].decode().upper() if line else ""
                if name == "SET" and len(line) >= 5:
                    n = int(line[4])
                    while len(st["buf"]) < eol + 2 + n + 2:
                        if not self._recv(st):
                            return None
                    data = st["buf"][eol + 2:eol + 2 + n]
                    st["buf"] = st["buf"][eol + 2 + n + 2:]
                    return "SET", [line[1], data]
                st["buf"] = b[eol + 2:]
                return name, line[1:]
            if not self._recv(st):
                return None

    def _answer(self, st, cmd):
        name, args = cmd
        c = st["c"]
        redis = self.protocol == "redis"
        if st.get("mute"):
            return True
        if name in ("PING", "VERSION"):
            c.sendall(b"+PONG\r\n" if redis else b"VERSION 1.6.99-chaos\r\n")
            if st["bad"] and self.behaviour == "stale":
                st["held"] += 1
            elif st["bad"] and self.behaviour == "leftover":
                threading.Timer(0.1, self._late, args=(c,)).start()
            return True
        if name in ("AUTH", "SELECT"):
            c.sendall(b"+OK\r\n")
            return True
        if name == "CONFIG":
            if st["bad"] and self.behaviour == "confighuge":
                c.sendall(b"CONFIG cluster 0 99999999\r\n")
                while not self.stopping.is_set():
                    c.sendall(b"x" * 4096)
                    time.sleep(0.01)
                return False
            if st["bad"] and self.behaviour == "configjunk":
                body = b"7\nnot-a-node also|bad\n"
                c.sendall(b"CONFIG cluster 0 %d\r\n%s\r\nEND\r\n" % (len(body), body))
                return True
            c.sendall(b"ERROR\r\n")
            return True
        if name == "GET":
            c.sendall(b"END\r\n")
            return True
        if name not in ("SET", "MSET", "DELETE", "DEL"):
            c.sendall(b"-ERR unknown command\r\n" if redis else b"ERROR\r\n")
            return True
        with self.lock:
            number = self.data_commands
            self.data_commands += 1
            if (st["bad"] and self.behaviour.startswith("oomat:") and
                    number in [int(n) for n in self.behaviour[6:].split(",")]):
                c.sendall(b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
                          if redis else b"SERVER_ERROR out of memory storing object\r\n")
                return True
            existed = False
            if name == "SET":
                self.stored[args[0]] = args[1]
            elif name == "MSET":
                for i in range(0, len(args) - 1, 2):
                    self.stored[args[i]] = args[i + 1]
            else:
                existed = self.stored.pop(args[0], None) is not None
        if name == "DEL":  # Redis: the count of keys removed
            honest = b":1\r\n" if existed else b":0\r\n"
        else:
            honest = ((b"DELETED\r\n" if existed else b"NOT_FOUND\r\n") if name == "DELETE"
                      else self._ok_reply())
        if not st["bad"]:
            c.sendall(honest)
            return True
        return self._misbehave(st, honest)

    def _late(self, c):
        try:
            c.sendall(self._ok_reply())
        except OSError:
            pass

    def _misbehave(self, st, honest):
        c = st["c"]
        b = self.behaviour
        redis = self.protocol == "redis"
        if b in ("ok", "early", "leftover", "slowread") or b.startswith("oomat:"):
            c.sendall(honest)
        elif b == "stale":
            out = self._ok_reply() * st["held"] + honest
            st["held"] = 0
            c.sendall(out)
        elif b == "extra":
            c.sendall(honest + honest)
        elif b.startswith("reply:"):
            t = b[6:].encode().decode("unicode_escape").encode("latin-1")
            c.sendall(t if t.endswith(b"\r\n") else t + b"\r\n")
        elif b == "huge":
            c.sendall(b"$2000000000\r\n" if redis else b"SERVER_ERROR ")
            while not self.stopping.is_set():
                c.sendall(b"x" * 1024)
                time.sleep(0.02)
            return False
        elif b == "drip":
            for i in range(len(honest)):
                c.sendall(honest[i:i + 1])
                time.sleep(self.drip_ms / 1000.0)
        elif b.startswith("resetafter:") and st.setdefault("answered", 0) < int(b[11:]):
            st["answered"] += 1
            c.sendall(honest)
        elif b == "reset" or b.startswith("resetafter:"):
            c.sendall(honest[:len(honest) // 2])
            time.sleep(0.05)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.close()
            return False
        elif b == "halffin":
            c.sendall(honest[:len(honest) // 2])
            time.sleep(0.05)
            c.shutdown(socket.SHUT_WR)
            return False
        elif b == "garbage":
            c.sendall(bytes(self.rng.randrange(256) for _ in range(64)))
        elif b == "empty":
            c.sendall(b"\r\n")
        elif b == "silent":
            st["mute"] = True
        else:
            raise ValueError("unknown behaviour " + b)
        return True


def _parse_resp_array(b):
    """(args, bytes used) for a complete RESP array of bulk strings at b, or
    None when incomplete."""
    if not b.startswith(b"*"):
        if b"\r\n" in b:  # an inline command
            line, _, _ = b.partition(b"\r\n")
            return line.split(), len(line) + 2
        return None
    eol = b.find(b"\r\n")
    if eol < 0:
        return None
    n = int(b[1:eol])
    pos = eol + 2
    args = []
    for _ in range(n):
        eol = b.find(b"\r\n", pos)
        if eol < 0:
            return None
        ln = int(b[pos + 1:eol])
        start = eol + 2
        if len(b) < start + ln + 2:
            return None
        args.append(b[start:start + ln])
        pos = start + ln + 2
    return args, pos


def invoke_measured(harness, tmpdir, mappings, event, env=None, timeout=60):
    """`fanout invoke` as harness.invoke runs it, also measuring the process:
    returns (returncode, stderr text, failed sequence numbers, peak RSS in
    KiB, seconds taken). A negative returncode is a signal. The peak RSS is
    the fanout process's own VmHWM, sampled every 10 ms from /proc once it
    runs the fanout binary (wait4's ru_maxrss would count the Python parent's
    pages from before the exec)."""
    import json
    import subprocess
    cfg = os.path.join(tmpdir, "mappings.json")
    with open(cfg, "w") as f:
        json.dump(mappings, f)
    resp = os.path.join(tmpdir, "response.json")
    if os.path.exists(resp):
        os.unlink(resp)
    evpath = os.path.join(tmpdir, "event.json")
    with open(evpath, "w") as f:
        json.dump(event, f)
    errpath = os.path.join(tmpdir, "stderr.txt")
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("AWS_") or k in ("FANOUT_CONFIG", "FANOUT_TABLE"):
            del e[k]
    e.update({"FANOUT_PLUGIN_PATH": harness.plugin_path(), "FANOUT_LOG_FORMAT": "text"})
    e.update(env or {})
    t0 = time.monotonic()
    with open(errpath, "wb") as err:
        p = subprocess.Popen([harness.FANOUT, "invoke", "--config", cfg, "--response", resp,
                              "--event", evpath], env=e, stdout=subprocess.DEVNULL,
                             stderr=err)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        peak = [0]
        done = threading.Event()

        def sample():
            exe = os.path.realpath(harness.FANOUT)
            while not done.is_set():
                try:
                    if os.readlink("/proc/%d/exe" % p.pid) == exe:
                        with open("/proc/%d/status" % p.pid) as f:
                            for line in f:
                                if line.startswith("VmHWM:"):
                                    peak[0] = max(peak[0], int(line.split()[1]))
                except OSError:
                    pass
                done.wait(0.01)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            # (the zombie keeps /proc/PID until wait4: one last sample
            # could see it, but its status then has no VmHWM)
            _, status, _ = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
            done.set()
            sampler.join()
        p.returncode = os.waitstatus_to_exitcode(status)
    took = time.monotonic() - t0
    with open(errpath, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    failed = []
    if os.path.exists(resp):
        with open(resp) as f:
            failed = [x["itemIdentifier"] for x in json.load(f)["batchItemFailures"]]
    return p.returncode, log, failed, peak[0], took


def main(argv):
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("protocol", choices=["redis", "memcached"])
    p.add_argument("behaviour")
    p.add_argument("--bad", type=int, default=None)
    p.add_argument("--parent-pid", type=int, default=None)
    a = p.parse_args(argv)
    s = ChaosServer(a.protocol, a.behaviour, a.bad)
    print(s.port, flush=True)
    while True:
        time.sleep(0.5)
        if a.parent_pid and not os.path.exists("/proc/%d" % a.parent_pid):
            break
    s.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
