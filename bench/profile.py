#!/usr/bin/env python3
"""Where the CPU went during a benchmark run, from a system-wide perf record.

  profile.py PERF_DATA --group NAME=PID[,PID...] [--group ...] [--top N]

Every sample (perf record -e cpu-clock -a) is given to the group whose
process ids contain its process; the rest are "other" (processes that are
not part of the benchmark: on a shared machine, other people's work). Prints
each group's share of the samples, then each group's top symbols. Samples
of the idle task (pid 0) are "idle". Symbols of libraries without symbol
tables (libjansson, the JVM's JIT code) are summed per library."""
import argparse
import collections
import re
import subprocess
import sys

LINE = re.compile(r"^\s*(?P<comm>.+?)\s+(?P<pid>\d+)/(?P<tid>\d+)\s+(?P<ip>[0-9a-f]+)\s+"
                  r"(?P<sym>.*?)\s+\((?P<dso>.*)\)\s*$")


def short_dso(dso):
    return dso.rsplit("/", 1)[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--group", action="append", default=[], metavar="NAME=PIDS")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    owner = {}
    order = []
    for g in args.group:
        name, _, pids = g.partition("=")
        order.append(name)
        for pid in filter(None, pids.split(",")):
            owner[int(pid)] = name
    order += ["other", "idle"]

    script = subprocess.run(["perf", "script", "-i", args.data, "-F", "comm,pid,tid,ip,sym,dso"],
                            capture_output=True, text=True)
    if script.returncode:
        sys.stderr.write(script.stderr)
        return 1
    total = 0
    per_group = collections.Counter()
    per_sym = collections.defaultdict(collections.Counter)
    per_dso = collections.defaultdict(collections.Counter)
    per_comm = collections.defaultdict(collections.Counter)
    for line in script.stdout.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        total += 1
        pid = int(m["pid"])
        group = "idle" if pid == 0 else owner.get(pid, "other")
        per_group[group] += 1
        dso = short_dso(m["dso"])
        sym = m["sym"]
        if not sym or sym == "[unknown]" or sym.startswith("0x"):
            sym = "[JIT code]" if dso.startswith("perf-") else "[no symbols]"
        if dso.startswith("perf-") and dso.endswith(".map"):
            dso = "JIT"
        per_sym[group][f"{sym}  ({dso})"] += 1
        per_dso[group][dso] += 1
        per_comm[group][m["comm"]] += 1
    if not total:
        print("no samples")
        return 1

    print(f"{total} samples (cpu-clock, all CPUs)\n")
    print("share of all samples, by part of the benchmark:")
    for g in order:
        print(f"  {g:<10} {100 * per_group[g] / total:5.1f}%")
    for g in order:
        n = per_group[g]
        if not n:
            continue
        print(f"\n== {g}: {n} samples ({100 * n / total:.1f}% of all)")
        print("  by shared object:")
        for dso, c in per_dso[g].most_common(8):
            print(f"    {100 * c / n:5.1f}%  {dso}")
        if g == "idle":
            continue
        if len(per_comm[g]) > 1:
            print("  by thread or command:")
            for comm, c in per_comm[g].most_common(8):
                print(f"    {100 * c / n:5.1f}%  {comm}")
        print("  top symbols:")
        for sym, c in per_sym[g].most_common(args.top):
            print(f"    {100 * c / n:5.1f}%  {sym}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
