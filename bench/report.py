#!/usr/bin/env python3
"""Turns the raw measurements of bench/run.sh into results.

  report.py mode RAW.json                      one line about a finished mode
  report.py final --meta META.json --out FILE RAW.json...
                                               the table on stdout, FILE as JSON

RAW.json is what run.sh collected for one mode: the generator's counts, the
loadgen report (first send, last delivery), one row of Postgres figures
(commit times, outcomes, latency percentiles), /proc CPU ticks of every
process before and after the measured phase, and the workers' peak RSS."""
import argparse
import json
import sys

# The targets of issue 6 (2 cores, everything co-located, durable commits).
TARGET_THROUGHPUT = 25000   # actions/s over 1,000,000 actions, Postgres target
TARGET_RATIO = 10           # batched / naive
TARGET_P99_MS = 250         # at 5,000 actions/s offered
TARGET_RATE = 5000
TARGET_RSS_MB = 64
TARGET_HTTP = 5000          # actions/s, every action a request to a 5 ms endpoint
FULL_N = 1000000


def cpu_delta(raw, what):
    """CPU seconds of one component during the measured phase."""
    before, after = raw["cpu_before"], raw["cpu_after"]
    tck = raw["clk_tck"]
    if what == "loadgen":
        return raw["loadgen"]["cpu_s"]
    if what == "workers":
        return sum(after["workers"][i] - before["workers"][i]
                   for i in range(len(after["workers"]))) / tck
    return (after[what] - before[what]) / tck


def metrics(raw):
    """The figures of one mode, computed from its raw measurements."""
    gen, lg, db = raw["gen"], raw["loadgen"], raw["db"]
    n = gen["count"]
    first_send, last_commit = lg["first_send"], db["last_commit"]
    elapsed = last_commit - first_send if last_commit and first_send else None
    machine_s = cpu_delta(raw, "machine_busy")
    m = {
        "mode": raw["mode"],
        "actions": n,
        "workers": raw["workers"],
        "batch_size": raw["batch_size"],
        "batch_ms": raw["batch_ms"],
        "offered_rate": raw["rate"] or None,
        "throughput_per_s": round(n / elapsed, 1) if elapsed else None,
        "elapsed_s": round(elapsed, 3) if elapsed else None,
        "publish_s": round(lg["last_delivery"] - first_send, 3),
        "publish_rate_per_s": lg["rate_achieved"],
        "publish_behind_max_ms": lg["behind_max_ms"],
        "latency_ms": {
            "p50": db["p50_ms"], "p95": db["p95_ms"], "p99": db["p99_ms"], "max": db["max_ms"],
            "count": db["latency_rows"],
            "measured": "created_at stamped at send -> Postgres commit timestamp",
            "left_out_first_s": db["settle_s"],
            "all": {"count": db["all_rows"], "p50": db["all_p50_ms"], "p99": db["all_p99_ms"]},
            "saturated": not raw["rate"],
            "by_send_second": db["by_second"] if raw["rate"] else None,
            "autovacuum": db["autovacuum"],
        },
        "postgres_transactions": db["transactions"],
        "actions_per_transaction": round(db["rows"] / db["transactions"], 1)
        if db["transactions"] else None,
        "outcomes": {k: db[k] for k in ("rows", "executed", "rejected", "duplicate", "other")},
        "statuses": db.get("statuses"),
        "generated": {"actions": n, "invalid": gen["invalid"], "duplicates": gen["duplicates"],
                      "valid": gen["valid"]},
        "commit_time_source": "pg_xact_commit_timestamp" if db["commit_ts_rows"] == db["rows"]
        else "received_at (transaction start) for %d rows" % (db["rows"] - db["commit_ts_rows"]),
        "cpu_s": {k: round(cpu_delta(raw, k), 2)
                  for k in ("workers", "postgres", "kafka", "redis", "loadgen")},
        # Of kafka: its JIT compiler threads (warm-up, not cost per action).
        "kafka_jit_cpu_s": round(cpu_delta(raw, "kafka_jit"), 2),
        "machine_busy_s": round(machine_s, 2),
        # Busy CPU not used by any part of the benchmark: other people's work
        # on a shared machine, the kernel's own threads, the harness.
        "other_cpu_s": round(machine_s - sum(cpu_delta(raw, k) for k in
                                             ("workers", "postgres", "kafka", "redis", "loadgen")), 2),
        "machine_iowait_s": round(cpu_delta(raw, "machine_iowait"), 2),
        "cpus": raw["cpus"],
        "worker_rss_peak_mb": [round(k / 1024, 1) for k in raw["worker_hwm_kb"]],
        "worker_exit": raw["worker_exit"],
        # http mode: the requests the endpoint answered, its delay, and how
        # many requests each worker was allowed in flight.
        "http": raw.get("http"),
    }
    # Every action has its row; at least the invalid ones are rejected (policy
    # and the executor may refuse more); at most the generated duplicates are
    # duplicates (a repeat of an action that was refused owns the key itself).
    m["outcomes_ok"] = (db["rows"] == n and db["rejected"] >= gen["invalid"]
                        and db["duplicate"] <= gen["duplicates"])
    m["cpu_s_per_1000"] = {k: round(v * 1000 / n, 4) for k, v in m["cpu_s"].items()}
    # What the machine could do if the benchmark had it to itself and were
    # CPU-bound: every CPU divided by the CPU one action costs, all parts
    # together. A figure robust to other work on a shared machine.
    ours = sum(m["cpu_s"].values())
    m["cpu_bound_ceiling_per_s"] = round(raw["cpus"] * n / ours) if ours else None
    window = raw["cpu_after"]["wall"] - raw["cpu_before"]["wall"]
    m["cpu_window_s"] = round(window, 3)
    m["machine_busy_pct"] = round(100 * machine_s / (window * raw["cpus"]), 1)
    return m


def fmt(v, spec=",.0f", none="-"):
    return none if v is None else format(v, spec)


def line(m):
    lat = m["latency_ms"]
    rate = f"offered {m['offered_rate']:,.0f}/s, " if m["offered_rate"] else ""
    return (f"{m['mode']}: {m['actions']:,} actions in {fmt(m['elapsed_s'], '.1f')} s = "
            f"{fmt(m['throughput_per_s'])}/s ({rate}{m['actions_per_transaction']} per "
            f"transaction); latency p50/p95/p99 {fmt(lat['p50'])}/{fmt(lat['p95'])}/"
            f"{fmt(lat['p99'])} ms; worker CPU {m['cpu_s_per_1000']['workers']:.3f} s/1000; "
            f"peak RSS {max(m['worker_rss_peak_mb']):.1f} MB; outcomes "
            f"{'ok' if m['outcomes_ok'] else 'MISMATCH'}")


def targets(modes):
    """The issue's targets, each with what was measured and a verdict."""
    out = []
    b, nv, lt = modes.get("batched"), modes.get("naive"), modes.get("latency")
    if b:
        note = "" if b["actions"] >= FULL_N else f" (measured over {b['actions']:,}; the target is over 1,000,000: --full)"
        out.append({"target": f"batched >= {TARGET_THROUGHPUT:,} actions/s" + note,
                    "measured": b["throughput_per_s"],
                    "ok": (b["throughput_per_s"] or 0) >= TARGET_THROUGHPUT})
    if b and nv and nv["throughput_per_s"]:
        out.append({"target": f"batched / naive >= {TARGET_RATIO}x",
                    "measured": round(b["throughput_per_s"] / nv["throughput_per_s"], 2),
                    "ok": b["throughput_per_s"] / nv["throughput_per_s"] >= TARGET_RATIO})
    if lt:
        note = "" if lt["offered_rate"] == TARGET_RATE else f" (offered {lt['offered_rate']:,.0f}/s)"
        out.append({"target": f"p99 <= {TARGET_P99_MS} ms at {TARGET_RATE:,}/s offered" + note,
                    "measured": lt["latency_ms"]["p99"],
                    "ok": lt["latency_ms"]["p99"] is not None
                    and lt["latency_ms"]["p99"] <= TARGET_P99_MS})
    rss = [r for m in modes.values() for r in m["worker_rss_peak_mb"]]
    if rss:
        out.append({"target": f"worker RSS <= {TARGET_RSS_MB} MB", "measured": max(rss),
                    "ok": max(rss) <= TARGET_RSS_MB})
    h = modes.get("http")
    if h:
        note = "" if h["http"]["delay_ms"] == 5 else f" (endpoint delay {h['http']['delay_ms']} ms)"
        out.append({"target": f"HTTP target (5 ms loopback endpoint) >= {TARGET_HTTP:,} actions/s" + note,
                    "measured": h["throughput_per_s"],
                    "ok": (h["throughput_per_s"] or 0) >= TARGET_HTTP})
    return out


def table(modes, tgts, ratio):
    cols = [("mode", "<8", lambda m: m["mode"]),
            ("actions", ">9", lambda m: f"{m['actions']:,}"),
            ("workers", ">7", lambda m: str(m["workers"])),
            ("batch", ">5", lambda m: str(m["batch_size"])),
            ("offered/s", ">9", lambda m: fmt(m["offered_rate"])),
            ("actions/s", ">9", lambda m: fmt(m["throughput_per_s"])),
            ("ceiling/s", ">9", lambda m: fmt(m["cpu_bound_ceiling_per_s"])),
            ("per txn", ">7", lambda m: fmt(m["actions_per_transaction"], ".1f")),
            ("p50 ms", ">8", lambda m: fmt(m["latency_ms"]["p50"])),
            ("p95 ms", ">8", lambda m: fmt(m["latency_ms"]["p95"])),
            ("p99 ms", ">8", lambda m: fmt(m["latency_ms"]["p99"])),
            ("wrk CPU s/1k", ">12", lambda m: f"{m['cpu_s_per_1000']['workers']:.3f}"),
            ("pg CPU s/1k", ">11", lambda m: f"{m['cpu_s_per_1000']['postgres']:.3f}"),
            ("kafka s/1k", ">10", lambda m: f"{m['cpu_s_per_1000']['kafka']:.3f}"),
            ("busy %", ">6", lambda m: fmt(m.get("machine_busy_pct"), ".0f")),
            ("other CPU s", ">11", lambda m: f"{m['other_cpu_s']:.1f}"),
            ("RSS MB", ">6", lambda m: f"{max(m['worker_rss_peak_mb']):.1f}"),
            ("executed", ">8", lambda m: f"{100 * m['outcomes']['executed'] / m['actions']:.0f} %"),
            ("outcomes", "<8", lambda m: "ok" if m["outcomes_ok"] else "MISMATCH")]
    rows = [[c[0] for c in cols]] + [[c[2](m) for c in cols] for m in modes.values()]
    for r in rows:
        print("  ".join(format(v, c[1]) for v, c in zip(r, cols)))
    print()
    if ratio:
        print(f"ratio batched / naive: {ratio:.1f}x")
    h = modes.get("http")
    if h:
        print(f"http mode: every action routed to a loopback endpoint answering after "
              f"{h['http']['delay_ms']} ms, up to {h['http']['in_flight']} requests in flight "
              f"per worker; it answered {h['http']['requests']:,} requests "
              "(its CPU is in other CPU s).")
    lt = modes.get("latency")
    if lt:
        la = lt["latency_ms"]
        print(f"latency mode: offered {lt['offered_rate']:,.0f}/s, published at "
              f"{lt['publish_rate_per_s']:,.0f}/s (schedule slipped at most "
              f"{lt['publish_behind_max_ms']:.0f} ms), committed at {fmt(lt['throughput_per_s'])}/s;")
        print(f"  percentiles of the {la['count']:,} actions sent after the first "
              f"{la['left_out_first_s']} s; over all {la['all']['count']:,}: p50 "
              f"{fmt(la['all']['p50'])} ms, p99 {fmt(la['all']['p99'])} ms")
        secs = la["by_send_second"] or []
        if secs:
            p99s = sorted(s["p99_ms"] for s in secs)
            worst = max(secs, key=lambda s: s["p99_ms"])
            print(f"  p99 of each second sent (JSON by_send_second): median {fmt(p99s[len(p99s) // 2])} ms, "
                  f"worst {fmt(worst['p99_ms'])} ms (second {worst['s']})")
    print("latency = created_at (stamped when sent) -> Postgres commit; in the batched and naive")
    print("runs everything is published at once, so theirs include the time queued behind the backlog.")
    print("executed = share of the actions executed at once (the rest: rejected, duplicate, and what")
    print("policy holds back: pending_approval, manual_only, suggested ...; statuses in the JSON);")
    print("outcomes ok = every action recorded, the invalid ones rejected, no more duplicates than sent.")
    print("busy % = all CPUs of the machine, from the go to the load generator until the last commit")
    print("was seen (the CPU figures are over the same window); other CPU s = busy CPU not")
    print("used by the workers, Postgres, Kafka, Redis or the load generator (a shared machine's other work);")
    print("ceiling/s = CPUs / CPU seconds per action of all those parts: the rate if they had the machine")
    print("to themselves and only CPU limited them.")
    print()
    for t in tgts:
        verdict = {True: "PASS", False: "MISS", None: "n/a "}[t["ok"]]
        measured = "-" if t["measured"] is None else f"{t['measured']:,}"
        print(f"  [{verdict}] {t['target']}: {measured}{'  ' + t['note'] if t.get('note') else ''}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("mode")
    p.add_argument("raw")
    p = sub.add_parser("final")
    p.add_argument("--meta", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("raws", nargs="+")
    args = ap.parse_args()
    if args.cmd == "mode":
        with open(args.raw) as f:
            print(line(metrics(json.load(f))))
        return 0
    with open(args.meta) as f:
        meta = json.load(f)
    modes = {}
    for path in args.raws:
        with open(path) as f:
            m = metrics(json.load(f))
        modes[m["mode"]] = m
    b, nv = modes.get("batched"), modes.get("naive")
    ratio = (b["throughput_per_s"] / nv["throughput_per_s"]
             if b and nv and b["throughput_per_s"] and nv["throughput_per_s"] else None)
    tgts = targets(modes)
    result = dict(meta, modes=modes, ratio_batched_naive=round(ratio, 2) if ratio else None,
                  targets=tgts)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print()
    table(modes, tgts, ratio)
    print(f"\nresults: {args.out}")
    for m in modes.values():
        if not m["outcomes_ok"]:
            print(f"WARNING: {m['mode']}: the outcomes {m['outcomes']} do not fit what was "
                  f"generated {m['generated']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
