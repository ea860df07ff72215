#!/usr/bin/python3
"""Checks the ELF files of Lambda zips against what provided.al2023 has.

    elf_check.py --arch x86_64|arm64 --provides FILE ZIP...

For every ELF file in every zip:
  - it is built for --arch;
  - every DT_NEEDED library, and every library its .note.dlopen ELF note
    says it loads at run time (freedesktop dlopen metadata: libcurl for the
    bootstrap), is in the same zip (a file of that name under
    lib/, the directory Lambda puts on LD_LIBRARY_PATH: /var/task/lib for the
    function, /opt/lib for a layer) or in the provides list: each zip must
    work on its own with the function zip, so a layer does not count on
    another layer's libraries, and the function zip on no layer;
  - every symbol version it needs from a provided library is PREFIX_N[.N...]
    with PREFIX named by a "max" line of the provides list and N at most
    that maximum (so GLIBC_2.35, GLIBC_PRIVATE and GLIBC_ABI_* fail);
  - no zip carries a library that the image provides (glibc, libstdc++,
    libgcc_s...): it would shadow the image's own or need a newer glibc.
Prints one line per zip; exits 1 on any problem.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile

MACHINES = {"x86_64": "Advanced Micro Devices X86-64", "arm64": "AArch64"}


def read_provides(path):
    sonames, maxima = {}, {}
    with open(path) as f:
        for line in f:
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "max":
                maxima[words[1]] = tuple(int(x) for x in words[2].split("."))
            else:
                sonames[words[0]] = words[1] if len(words) > 1 else ""
    return sonames, maxima


def readelf(args, path):
    return subprocess.run(["readelf", "-W"] + args + [path], check=True,
                          capture_output=True, text=True).stdout


def version_needs(path):
    """[(file, version)] from the .gnu.version_r section."""
    out, needs, current, inside = readelf(["-V"], path), [], None, False
    for line in out.splitlines():
        if line.startswith("Version needs section"):
            inside = True
            continue
        if inside and line.startswith(("Version ", "No version")):
            inside = False
        if not inside:
            continue
        m = re.search(r"File: (\S+)", line)
        if m:
            current = m.group(1)
            continue
        m = re.search(r"Name: (\S+)", line)
        if m and current:
            needs.append((current, m.group(1)))
    return needs


def version_ok(version, maxima):
    m = re.fullmatch(r"([A-Z][A-Z_]*?)_(\d+(?:\.\d+)*)", version)
    if not m or m.group(1) not in maxima:
        return False
    have = tuple(int(x) for x in m.group(2).split("."))
    return have <= maxima[m.group(1)]


def dlopen_sonames(path):
    """The sonames of the file's .note.dlopen notes (owner FDO, type
    0x407c0c0a, a JSON array of {"soname": [...], ...})."""
    r = subprocess.run(["readelf", "-p", ".note.dlopen", path], capture_output=True, text=True)
    out = []
    for m in re.finditer(r"\[\s*\w+\]\s+(\[\{.*\}\])\s*$", r.stdout, re.M):
        for entry in json.loads(m.group(1)):
            out.extend(entry.get("soname", []))
    return out


def check_zip(zpath, arch, sonames, maxima):
    problems, elves = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(zpath) as z:
            names = z.namelist()
            z.extractall(tmp)
        shipped = {os.path.basename(n) for n in names if n.startswith("lib/")}
        for n in sorted(shipped & set(sonames)):
            problems.append("lib/%s is provided by the image (%s): never bundle it"
                            % (n, sonames[n]))
        for name in sorted(names):
            path = os.path.join(tmp, name)
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
            elves += 1
            header = readelf(["-h"], path)
            if MACHINES[arch] not in header:
                m = re.search(r"Machine:\s+(.*)", header)
                problems.append("%s: built for %s, not %s"
                                % (name, m.group(1).strip() if m else "?", arch))
            dyn = readelf(["-d"], path)
            for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn):
                if lib not in shipped and lib not in sonames:
                    problems.append("%s needs %s: neither in this zip's lib/ nor provided"
                                    % (name, lib))
            for lib in dlopen_sonames(path):
                if lib not in shipped and lib not in sonames:
                    problems.append("%s loads %s at run time (.note.dlopen): neither in this "
                                    "zip's lib/ nor provided" % (name, lib))
            for lib, version in version_needs(path):
                if lib in sonames and not version_ok(version, maxima):
                    problems.append("%s needs %s from %s: newer than (or not among) what "
                                    "provided.al2023 has" % (name, version, lib))
    return elves, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", required=True, choices=sorted(MACHINES))
    ap.add_argument("--provides", required=True)
    ap.add_argument("zips", nargs="+")
    args = ap.parse_args()
    sonames, maxima = read_provides(args.provides)
    bad = 0
    for z in args.zips:
        elves, problems = check_zip(z, args.arch, sonames, maxima)
        if not elves:
            problems.append("no ELF file in it")
        print("%s: %d ELF files, %s" % (os.path.basename(z), elves,
                                         "ok" if not problems else "%d problems" % len(problems)))
        for p in problems:
            print("  " + p)
        bad += bool(problems)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
