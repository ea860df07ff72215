#!/usr/bin/python3
"""Runs the packaged bootstrap the way Lambda's provided.al2023 would.

    lambda_run.py --arch x86_64|arm64 --provides FILE --function ZIP
                  --layer ZIP [--layer ZIP...] [--hello]

Builds a root that holds only:
  - the libraries of the provides list (glibc, libstdc++, libgcc_s, OpenSSL,
    libcurl...), Debian's copies of the target architecture standing in for
    AL2023's, in /usr/lib64 (/lib64 -> usr/lib64), with the libraries those
    copies need themselves, except the ones the zips bundle: those are found
    only where Lambda would find them, in /var/task/lib or /opt/lib;
  - the function zip unpacked in /var/task, the layers in /opt (in order),
    both mounted read-only as in Lambda;
  - /tmp (mode 1777), /proc, /dev; for arm64, qemu-aarch64-static.
It then enters that root with unshare (mount and PID namespaces) and chroot,
as an unprivileged uid (Lambda's runtime does not run as root), with
Lambda's environment variables (LD_LIBRARY_PATH in Lambda's order,
AWS_LAMBDA_RUNTIME_API...) and nothing else, and:
  1. `bootstrap plugins --json` must list every plugin of the layers, loaded;
  2. the bootstrap serves two Kinesis invocations from the Runtime API
     emulator (tests/**/runtime_emulator.py) with the mappings in
     /var/task/mappings.json (FANOUT_CONFIG): a `file` target, a `redis`
     target (redis-server on loopback, started and stopped here), a
     `memcached` target (memcached on loopback) and, with --hello, the SDK
     example's `hello` target; the emulator must get two successful
     responses and every record must be at every target.
Needs root (chroot, mounts). Exit status: 0 passed, 1 failed, 77 not root.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
TRIPLETS = {"x86_64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
INTERP = {"x86_64": "/lib64/ld-linux-x86-64.so.2", "arm64": "/lib/ld-linux-aarch64.so.1"}
QEMU = "/usr/bin/qemu-aarch64-static"
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/packaged"
UID = 993  # Lambda's runtime user is not root; any unprivileged id will do
# What Lambda sets for provided.al2023 (docs: "Defined runtime environment
# variables"; the LD_LIBRARY_PATH and PATH of the provided.al2023 image).
LAMBDA_ENV = {
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
                       "/var/task:/var/task/lib:/opt/lib",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "_HANDLER": "fanout",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_LAMBDA_FUNCTION_NAME": "fanout-packaged",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fanout-packaged",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "AWS_ACCESS_KEY_ID": "AKIDPACKAGECHECK",
    "AWS_SECRET_ACCESS_KEY": "not-a-secret",
    "AWS_SESSION_TOKEN": "not-a-token",
    "TZ": ":UTC",
    "LANG": "en_US.UTF-8",
    # The mapping store: a file shipped in the function's code. (Without
    # it the engine reads the DynamoDB table FANOUT_TABLE, or
    # <function name>Targets.)
    "FANOUT_CONFIG": "/var/task/mappings.json",
}


class Failed(Exception):
    pass


def log(msg):
    print("lambda-run: " + msg, flush=True)


def provides(path):
    names = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if w and not w[0].startswith("#") and w[0] != "max":
                names.append(w[0])
    return names


def needed(path):
    out = subprocess.run(["readelf", "-dW", path], check=True, capture_output=True,
                         text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def host_lib(triplet, soname):
    for d in ("/usr/lib/" + triplet, "/lib/" + triplet):
        p = os.path.join(d, soname)
        if os.path.exists(p):
            return p
    return None


def emulated(arch):
    """arm64 on another machine runs under qemu-user, called directly (no
    binfmt_misc needed): the static qemu is copied into the root."""
    return arch == "arm64" and os.uname().machine != "aarch64"


def build_root(root, args, zips_libs):
    """The image's libraries (Debian stand-ins) and their own needs, minus
    what the zips bundle."""
    triplet = TRIPLETS[args.arch]
    lib64 = os.path.join(root, "usr", "lib64")
    os.makedirs(lib64)
    os.makedirs(os.path.join(root, "usr", "lib"))
    os.makedirs(os.path.join(root, "usr", "bin"))
    os.symlink("usr/lib64", os.path.join(root, "lib64"))
    os.symlink("usr/lib", os.path.join(root, "lib"))
    os.symlink("usr/bin", os.path.join(root, "bin"))
    queue, seen, missing = [], set(), []
    for soname in provides(args.provides):
        p = host_lib(triplet, soname)
        if p:
            queue.append((soname, p))
        elif not soname.startswith("ld-linux"):
            missing.append(soname)
    copied = 0
    while queue:
        soname, p = queue.pop()
        if soname in seen:
            continue
        seen.add(soname)
        shutil.copy2(os.path.realpath(p), os.path.join(lib64, soname))
        copied += 1
        for n in needed(p):
            if n in zips_libs or n in seen:
                continue
            q = host_lib(triplet, n)
            if not q:
                raise Failed("%s (needed by the stand-in %s) is not on this machine" % (n, soname))
            queue.append((n, q))
    interp = INTERP[args.arch]
    name = os.path.basename(interp)
    if not os.path.exists(os.path.join(lib64, name)):
        shutil.copy2(os.path.realpath(host_lib(triplet, name) or interp), os.path.join(lib64, name))
    if args.arch == "arm64":
        os.symlink("../lib64/" + name, os.path.join(root, "usr", "lib", name))
    if emulated(args.arch):
        shutil.copy2(QEMU, os.path.join(root, "usr", "bin", os.path.basename(QEMU)))
    for d in ("tmp", "proc", "dev", "etc", "var/task", "opt", "var/runtime"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    with open(os.path.join(root, "etc", "hosts"), "w") as f:
        f.write("127.0.0.1 localhost\n")
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/false\nsbx_user:x:%d:%d::/tmp:/bin/false\n"
                % (UID, UID))
    if missing:
        log("not on this machine, so not in the root: " + " ".join(missing))
    log("root: %d libraries standing in for the image's (%s)" % (copied, args.arch))


def unpack(zpath, dest):
    with zipfile.ZipFile(zpath) as z:
        for info in z.infolist():
            z.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(os.path.join(dest, info.filename), mode)
        return [os.path.basename(n) for n in z.namelist() if n.startswith("lib/")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            raise Failed("%s exited at start (%d)" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Failed("%s did not listen on %d" % (what, port))


def redis_get(port, key):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        k = key.encode()
        s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
        data = b""
        while b"\r\n" not in data:
            data += s.recv(65536)
        head, rest = data.split(b"\r\n", 1)
        if head == b"$-1":
            return None
        n = int(head[1:])
        while len(rest) < n + 2:
            rest += s.recv(65536)
        return rest[:n]


def memcached_get(port, key):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"get %s\r\n" % key.encode())
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        m = re.match(rb"VALUE \S+ \d+ (\d+)\r\n", data)
        return data[m.end():m.end() + int(m.group(1))] if m else None


def find_emulator():
    for dirpath, _, files in os.walk(os.path.join(SOURCE, "tests")):
        if "runtime_emulator.py" in files and "node_modules" not in dirpath:
            return os.path.join(dirpath, "runtime_emulator.py")
    raise Failed("no tests/**/runtime_emulator.py")


def kinesis_event(records):
    recs = []
    for i, (key, data) in enumerate(records):
        seq = "4960000000000000000000000000000000000000000000000%03d" % i
        recs.append({"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": key,
                                 "sequenceNumber": seq,
                                 "data": base64.b64encode(data).decode(),
                                 "approximateArrivalTimestamp": time.time()},
                     "eventSource": "aws:kinesis", "eventVersion": "1.0",
                     "eventID": "shardId-000000000000:" + seq,
                     "eventName": "aws:kinesis:record",
                     "invokeIdentityArn": "arn:aws:iam::123456789012:role/fanout",
                     "awsRegion": "us-east-1", "eventSourceARN": ARN})
    return {"Records": recs}


def run_in_root(root, args, argv, timeout, stdout_path):
    """argv run as the bootstrap's user inside the root, Lambda's env only."""
    prefix = ["/usr/bin/" + os.path.basename(QEMU)] if emulated(args.arch) else []
    # Host tools by absolute path: PATH is Lambda's from here on.
    mount, chroot = shutil.which("mount"), shutil.which("chroot")
    if not mount or not chroot:
        raise Failed("mount or chroot is missing")
    script = (
        'set -e; r="$1"; shift; '
        'M=%s; $M -t proc proc "$r/proc"; $M --rbind /dev "$r/dev"; '
        'for d in opt var/task; do $M --bind "$r/$d" "$r/$d"; '
        '$M -o remount,bind,ro "$r/$d"; done; '
        'exec %s --userspec=%d:%d "$r" "$@"' % (mount, chroot, UID, UID))
    cmd = ["/usr/bin/unshare", "--mount", "--pid", "--fork", "--kill-child",
           "/bin/sh", "-c", script, "sh", root] + prefix + argv
    with open(stdout_path, "wb") as out:
        return subprocess.run(cmd, env=dict(LAMBDA_ENV, **args.extra_env), stdout=out,
                              stderr=subprocess.PIPE, timeout=timeout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", required=True, choices=sorted(TRIPLETS))
    ap.add_argument("--provides", required=True)
    ap.add_argument("--function", required=True)
    ap.add_argument("--layer", action="append", default=[])
    ap.add_argument("--hello", action="store_true",
                    help="a layer holds the SDK example: deliver to a hello target too")
    ap.add_argument("--keep", action="store_true", help="keep the root (for debugging)")
    args = ap.parse_args()
    args.extra_env = {}
    if os.geteuid() != 0:
        log("SKIPPED: needs root (chroot, mount and PID namespaces); CI runs as root")
        return 77
    if args.arch == "x86_64" and os.uname().machine != "x86_64":
        log("FAILED: x86_64 packages are run on an x86_64 machine")
        return 1
    if emulated(args.arch) and not os.path.exists(QEMU):
        log("FAILED: %s is missing (apt-get install qemu-user-static)" % QEMU)
        return 1
    tmp = tempfile.mkdtemp(prefix="fanout-lambda-root.")
    procs = []
    try:
        root = os.path.join(tmp, "root")
        os.makedirs(root)
        # The zips' libraries first: the root must not hold a copy of them.
        bundled = set()
        with zipfile.ZipFile(args.function) as z:
            bundled |= {os.path.basename(n) for n in z.namelist() if n.startswith("lib/")}
        for layer in args.layer:
            with zipfile.ZipFile(layer) as z:
                bundled |= {os.path.basename(n) for n in z.namelist() if n.startswith("lib/")}
        build_root(root, args, bundled)
        unpack(args.function, os.path.join(root, "var", "task"))
        for layer in args.layer:
            unpack(layer, os.path.join(root, "opt"))
        types = sorted(f[:-3] for f in os.listdir(os.path.join(root, "opt", "fanout", "plugins"))
                       if f.endswith(".so"))

        # 1. every plugin loads
        out = os.path.join(tmp, "plugins.json")
        r = run_in_root(root, args, ["/var/task/bootstrap", "plugins", "--json"], 120, out)
        try:
            listed = json.load(open(out))
        except ValueError:
            raise Failed("bootstrap plugins --json printed no JSON (exit %d): %s %s"
                         % (r.returncode, open(out).read()[:2000], r.stderr.decode()[-2000:]))
        ok = sorted(p["type"] for p in listed if p.get("ok") is True
                    and p.get("path", "").startswith("/opt/fanout/plugins/"))
        if ok != types:
            bad = [p for p in listed if p.get("type") not in ok]
            raise Failed("plugins loaded from /opt/fanout/plugins: %s, expected %s; %s"
                         % (ok, types, json.dumps(bad)[:2000]))
        log("bootstrap plugins --json: %d plugins loaded from /opt/fanout/plugins: %s"
            % (len(ok), " ".join(ok)))

        # 2. invocations, delivered to file, redis, memcached (and hello)
        redis_port, mc_port = free_port(), free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(redis)
        mc = subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(mc_port), "-U", "0",
                               "-u", "nobody"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(mc)
        wait_port(redis_port, redis, "redis-server")
        wait_port(mc_port, mc, "memcached")
        mappings = [
            {"sourceArn": ARN, "id": "to-file", "type": "file",
             "destination": "/tmp/fanout-file.out", "active": True},
            {"sourceArn": ARN, "id": "to-redis", "type": "redis",
             "destination": "127.0.0.1:%d" % redis_port, "active": True, "collapse": "none"},
            {"sourceArn": ARN, "id": "to-memcached", "type": "memcached",
             "destination": "127.0.0.1:%d" % mc_port, "active": True},
        ]
        if args.hello:
            mappings.append({"sourceArn": ARN, "id": "to-hello", "type": "hello",
                             "destination": "/tmp/fanout-hello.tsv", "active": True})
        # The mapping file is part of the function's code (read-only /var/task).
        with open(os.path.join(root, "var", "task", "mappings.json"), "w") as f:
            json.dump(mappings, f)
        records = [[("pk-%d-%d" % (i, j), json.dumps({"n": i, "m": j, "arch": args.arch}).encode())
                    for j in range(3)] for i in range(2)]
        events = [{"event": kinesis_event(recs)} for recs in records]
        evfile, api = os.path.join(tmp, "events.json"), os.path.join(tmp, "api.jsonl")
        with open(evfile, "w") as f:
            json.dump(events, f)
        emu = subprocess.Popen([sys.executable, find_emulator(), "--events", evfile,
                                "--output", api, "--exit-when-empty", "--max-lifetime", "180",
                                "--parent-pid", str(os.getpid())], stdout=subprocess.PIPE)
        procs.append(emu)
        port = emu.stdout.readline().decode().strip()
        if not port.isdigit():
            raise Failed("the runtime emulator printed no port")
        args.extra_env = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:" + port}
        t0 = time.monotonic()
        r = run_in_root(root, args, ["/var/task/bootstrap"], 180, os.path.join(tmp, "stdout"))
        took = time.monotonic() - t0
        stderr = r.stderr.decode(errors="replace")
        calls = []
        if os.path.exists(api):
            with open(api) as f:
                calls = [json.loads(line) for line in f]
        posts = [c for c in calls if c["kind"] in ("response", "error", "init_error")]
        problems = []
        if [c["kind"] for c in posts] != ["response", "response"]:
            problems.append("the emulator got %s, expected two responses: %s"
                            % ([c["kind"] for c in posts],
                               [c.get("body", "")[:500] for c in posts]))
        for c in posts:
            if c["kind"] == "response" and "batchItemFailures" in c.get("body", "") \
                    and '"itemIdentifier"' in c.get("body", ""):
                problems.append("a response reports failures: " + c["body"][:500])
        want = [kv for recs in records for kv in recs]
        outfile = os.path.join(root, "tmp", "fanout-file.out")
        # The file plugin writes one JSON line per record: key, data...
        got = {}
        if os.path.exists(outfile):
            for line in open(outfile, encoding="utf-8"):
                rec = json.loads(line)
                got[rec.get("key")] = rec.get("data", "").encode()
        for key, data in want:
            if got.get(key) != data:
                problems.append("file target: %s = %r, expected %r" % (key, got.get(key), data))
            v = redis_get(redis_port, key)
            if v != data:
                problems.append("redis: %s = %r, expected %r" % (key, v, data))
            v = memcached_get(mc_port, key)
            if v != data:
                problems.append("memcached: %s = %r, expected %r" % (key, v, data))
        if args.hello:
            hfile = os.path.join(root, "tmp", "fanout-hello.tsv")
            lines = open(hfile).read().splitlines() if os.path.exists(hfile) else []
            keys = sorted(line.split("\t")[0] for line in lines)
            if keys != sorted(k for k, _ in want):
                problems.append("hello target: keys %s, expected %s"
                                % (keys, sorted(k for k, _ in want)))
        if problems:
            raise Failed("; ".join(problems) + "\nbootstrap exit %d, stderr:\n%s"
                         % (r.returncode, stderr[-4000:]))
        log("bootstrap served %d invocations in %.1f s (%s%s): %d records each to file, "
            "redis, memcached%s" % (len(posts), took, args.arch,
                                    " under qemu-aarch64-static" if emulated(args.arch) else "",
                                    len(want), ", hello" if args.hello else ""))
        return 0
    except Failed as e:
        log("FAILED: %s" % e)
        return 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if args.keep:
            log("root kept in " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
