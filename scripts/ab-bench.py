#!/usr/bin/env python3
"""Before/after benchmark of two `braid-bench` binaries, with a control.

    scripts/ab-bench.py --old OLD/braid-bench --new NEW/braid-bench [--pairs 10]
                        [--cases W1:100,W1:10000,W2:1000,W2:10000,W3:3,W4:6,W5:3]

This machine's fsync cost drifts by 10x within an hour, so two binaries are
never measured in separate blocks. Each pair runs three fresh processes back
to back, `old`, `new`, `old` again (the order of the first two alternates from
pair to pair), and each process reports the median of its timed runs. The
second `old` is the control: when old-against-old differs by more than 5 %,
the machine moved during the measurement and the new/old ratio of that case
says nothing. A case counts as slower only when new/old > 1.05 while the
control stays within 5 %.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile


def one(binary, workload, size, runs, db_dir):
    cmd = [binary, "--one", workload, "--size", str(size), "--runs", str(runs), "--warmup", "1", "--db-dir", db_dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result["status"] != "ok":
        sys.exit(f"{binary} {workload} {size}: {result.get('error')}")
    return statistics.median(s["secs"] for s in result["samples"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per process")
    ap.add_argument("--cases", default="W1:100,W1:10000,W2:1000,W2:10000,W3:3,W4:6,W5:3")
    ap.add_argument("--db-dir", default=None, help="where the databases go (the real disk)")
    args = ap.parse_args()
    db_dir = args.db_dir or tempfile.mkdtemp(prefix="braid-ab-")
    cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases.split(",")]

    rows = []
    slower = []
    for workload, size in cases:
        old, new, control = [], [], []
        for pair in range(args.pairs):
            if pair % 2 == 0:
                old.append(one(args.old, workload, size, args.runs, db_dir))
                new.append(one(args.new, workload, size, args.runs, db_dir))
            else:
                new.append(one(args.new, workload, size, args.runs, db_dir))
                old.append(one(args.old, workload, size, args.runs, db_dir))
            control.append(one(args.old, workload, size, args.runs, db_dir))
        m_old, m_new, m_ctl = (statistics.median(x) for x in (old, new, control))
        ratio, ctl = m_new / m_old, m_ctl / m_old
        # Paired ratios are steadier than ratios of medians on a drifting disk.
        paired = statistics.median(n / o for n, o in zip(new, old))
        verdict = "ok"
        if abs(ctl - 1) > 0.05:
            verdict = "control moved: no verdict"
        elif ratio > 1.05 and paired > 1.05:
            verdict = "SLOWER"
            slower.append(f"{workload} {size}")
        rows.append((workload, size, m_old, m_new, m_ctl, ratio, paired, ctl, verdict))
        print(f"{workload} {size}: old {m_old*1e3:.2f} ms, new {m_new*1e3:.2f} ms, control {m_ctl*1e3:.2f} ms", file=sys.stderr)

    print(f"| W | size | old (median) | new (median) | old again (control) | new/old | paired new/old | control/old | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w, n, o, nw, c, r, p, ctl, v in rows:
        print(f"| {w} | {n} | {o*1e3:.2f} ms | {nw*1e3:.2f} ms | {c*1e3:.2f} ms | {r:.3f} | {p:.3f} | {ctl:.3f} | {v} |")
    print(f"\n{args.pairs} pairs per case, {args.runs} timed runs per process (median), after one untimed run.")
    if slower:
        print(f"slower by more than 5 %: {', '.join(slower)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
