#!/usr/bin/python3
"""fanout cold start: one `fanout invoke` process per run, measured as the
child's user+sys CPU (wait4), wall time and peak RSS; medians of --runs.

Events: the empty `{"Records":[]}` and Lambda-shaped Kinesis events
(bench.py's make_event), one `file` target writing to /dev/null. Last, the
binary as Lambda's bootstrap: the Runtime API loop serving one empty event
from tests/servers/runtime_emulator.py, until the emulator goes away.

    bench/coldstart.py [--build build-release] [--runs 20] [--sizes 8000x100]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ARN, make_event  # noqa: E402

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_once(argv, env, check=True):
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if check and os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("fanout failed: " + " ".join(argv))
    return (ru.ru_utime + ru.ru_stime) * 1000, wall * 1000


def run_runtime(fanout, env, tmp, event=None):
    """The bootstrap against the emulator: one event (empty by default), then
    the API goes away and the loop exits (non-zero: the API is
    unreachable)."""
    events = os.path.join(tmp, "events.json")
    with open(events, "w") as f:
        json.dump([{"event": event if event is not None else {"Records": []}}], f)
    emu = subprocess.Popen([
        "/usr/bin/python3", os.path.join(SOURCE, "tests", "servers", "runtime_emulator.py"),
        "--events", events, "--output", os.path.join(tmp, "api.jsonl"),
        "--exit-when-empty"], stdout=subprocess.PIPE)
    try:
        port = emu.stdout.readline().decode().strip()
        e = dict(env, AWS_LAMBDA_RUNTIME_API="127.0.0.1:" + port)
        return run_once([fanout], e, check=False)
    finally:
        emu.kill()
        emu.wait()
        emu.stdout.close()


def peak_rss_mb(argv, env):
    """Through /usr/bin/time: a child spawned by this Python process would
    report Python's own pages as its peak (exec keeps the old high-water
    mark), one forked by `time` does not."""
    with tempfile.NamedTemporaryFile("r") as out:
        run_once(["/usr/bin/time", "-f", "%M", "-o", out.name] + argv, env)
        return int(out.read().split()[-1]) / 1024


def measure(argv, env, runs):
    rows = [run_once(argv, env) for _ in range(runs)]
    return [statistics.median(r[i] for r in rows) for i in range(2)] + [
        max(peak_rss_mb(argv, env) for _ in range(3))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-release")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sizes", default="8000x100")
    args = ap.parse_args()
    fanout = os.path.abspath(os.path.join(args.build, "engine", "fanout"))
    env = dict(os.environ, FANOUT_PLUGIN_PATH=os.path.join(
        os.path.abspath(args.build), "plugins", "file"))
    print("| event | CPU ms | wall ms | peak RSS MB |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "mappings.json")
        with open(cfg, "w") as f:
            json.dump([{"sourceArn": ARN, "id": "bench", "type": "file",
                        "destination": "/dev/null", "active": True}], f)
        events = [("empty", b'{"Records":[]}')]
        for spec in filter(None, args.sizes.split(",")):
            n, size = (int(x) for x in spec.split("x"))
            events.append(("%d x %d B" % (n, size), make_event("k%dx%d" % (n, size))[0]))
        for name, body in events:
            path = os.path.join(tmp, "event.json")
            with open(path, "wb") as f:
                f.write(body)
            argv = [fanout, "invoke", "--quiet", "--config", cfg, "--event", path]
            cpu, wall, rss = measure(argv, env, args.runs)
            print("| %s | %.1f | %.1f | %.1f |" % (name, cpu, wall, rss))
        env_rt = dict(env, FANOUT_CONFIG=cfg)
        for name, body in events:
            event = json.loads(body)
            rows = [run_runtime(fanout, env_rt, tmp, event) for _ in range(args.runs)]
            print("| Runtime API loop, %s%s | %.1f | %.1f | - |" % (
                name, " event" if name == "empty" else "", *(
                    statistics.median(r[i] for r in rows) for i in range(2))))


if __name__ == "__main__":
    main()
