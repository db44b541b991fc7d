#!/usr/bin/env python3
"""The report of bench/run: one table per scenario (medians, ratios, the
target, met or missed by how much), then a summary of the targets.

    python3 bench/tables.py bench/out/<stamp>     # print a run's report again

Reads <out>/info.json and <out>/results.jsonl (one record per kept run).
"""

import json
import os
import statistics
import sys

OTHER_MAX = 10
T_KEEPALIVE = 0.83
T_PIPELINED = 0.83
T_IDLE_KIB = 1.0
T_WATCH = 1.03
T_DETECT_US = 1000.0
T_AXUM = 0.9

TITLES = {
    "keepalive": "keep-alive plaintext: wrk -t1 -c{c} GET /plaintext, {d}s per run",
    "pipelined": "pipelined plaintext: wrk -t1 -c{c}, {depth} GET /plaintext per write, {d}s per run",
    "bytes1m": "{size}-byte responses: wrk -t1 -c{bc} GET /bytes/{size}, {d}s per run",
    "watch": "socket watch on vs off: hangup, keep-alive plaintext, wrk -t1 -c{c}, {d}s per run",
    "idle": "idle connections: {n} keep-alive connections, one GET /plaintext each, held open",
    "detection": "hang-up detection latency: client close -> handler notified ({aborts} aborts each, "
                 "cargo bench --bench hangup_detection, taskset -c 0,1)",
}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return "-"
    m = statistics.median(xs)
    return f"{100 * (max(xs) - min(xs)) / m:.0f}%" if m else "-"


def f(x, fmt, na="n/a"):
    return na if x is None else format(x, fmt)


def ratio(a, b):
    return None if a is None or not b else a / b


def xr(r):
    return "-" if r is None else f"x{r:.2f}"


def load(out):
    with open(os.path.join(out, "info.json")) as fh:
        info = json.load(fh)
    recs = []
    path = os.path.join(out, "results.jsonl")
    if os.path.exists(path):
        with open(path) as fh:
            recs = [json.loads(line) for line in fh if line.strip()]
    return info, recs


def settings(info):
    kv = dict(part.split("=", 1) for part in info["settings"].split() if "=" in part)
    return {
        "c": kv.get("CONNECTIONS", "64"), "d": kv.get("DURATION", "5s").rstrip("s"),
        "depth": kv.get("PIPELINE_DEPTH", "16"), "bc": kv.get("BYTES_CONNECTIONS", "8"),
        "size": kv.get("BYTES_SIZE", "1048576"), "n": kv.get("IDLE_CONNS", "10000"),
        "aborts": kv.get("ABORTS", "1000"), "settle": kv.get("IDLE_SETTLE", "1.0s"),
    }


class Rows:
    """Records of one scenario, grouped by variant, in plan order."""

    def __init__(self, recs, scenario):
        self.by = {}
        self.failed = {}
        self.disturbed = 0
        for r in recs:
            if r["scenario"] != scenario:
                continue
            if "failed" in r:
                self.failed.setdefault(r["variant"], []).append(r["failed"])
                continue
            self.by.setdefault(r["variant"], []).append(r)
            if r.get("others", 0) > OTHER_MAX:
                self.disturbed += 1

    def variants(self):
        seen = list(self.by)
        return seen + [v for v in self.failed if v not in seen]

    def m(self, v, key):
        return med([r.get(key) for r in self.by.get(v, [])])

    def vals(self, v, key):
        return [r.get(key) for r in self.by.get(v, [])]

    def total(self, v, key):
        return sum(r.get(key, 0) for r in self.by.get(v, []))


def paired_ratios(rows, a, b, key="cpu_us_req"):
    """Ratios a / b of the runs measured in the same round (drift cancels)."""
    b_by = {r["run"]: r.get(key) for r in rows.by.get(b, [])}
    return [r[key] / b_by[r["run"]] for r in rows.by.get(a, []) if b_by.get(r["run"]) and r.get(key)]


def verdict(ok, detail):
    return ("met" if ok else "MISSED") + f": {detail}"


def cpu_table(name, rows, ref, lines, extra_cols=False):
    hdr = (f"{'server':15} {'runs':>4} {'req/s':>9} {'p99':>8} {'CPU us/req':>10} {'spread':>6} {'(user)':>7} "
           f"{'srv CPU':>7} {'clnt CPU':>8} {'others':>6} {'sock err':>8} {'non-2xx':>7} {'CPU/req vs ' + ref:>20} "
           f"{'req/s vs ' + ref:>18}")
    lines.append(hdr)
    ref_cpu, ref_rps = rows.m(ref, "cpu_us_req"), rows.m(ref, "rps")
    for v in rows.variants():
        if v not in rows.by:
            lines.append(f"{v:15} FAILED: {rows.failed[v][-1]}")
            continue
        cpu, rps = rows.m(v, "cpu_us_req"), rows.m(v, "rps")
        p99 = rows.m(v, "p99_us")
        lines.append(
            f"{v:15} {len(rows.by[v]):>4} {rps:>9.0f} {f(p99, '.0f') + ('us' if p99 is not None else ''):>8} "
            f"{cpu:>10.3f} {spread(rows.vals(v, 'cpu_us_req')):>6} {rows.m(v, 'user_us_req'):>7.3f} "
            f"{rows.m(v, 'srv_cpu'):>6.0f}% {rows.m(v, 'wrk_cpu'):>7.0f}% {rows.m(v, 'others'):>5.0f}% "
            f"{rows.total(v, 'sock_err'):>8} {rows.total(v, 'non2xx'):>7} {xr(ratio(cpu, ref_cpu)):>20} "
            f"{xr(ratio(rps, ref_rps)):>18}"
            + (f"   ({len(rows.failed[v])} failed attempt(s))" if v in rows.failed else ""))


def render(out):
    info, recs = load(out)
    s = settings(info)
    L = []
    L.append(f"hangup benchmark suite, {info.get('started', '?')}")
    L.append(f"machine: {info['nproc']} CPUs, {info['model']} ({info['mhz']} MHz), kernel {info['kernel']}")
    L.append(f"tools: {info['wrk']}; {info['rustc']}; {info['go']}; {info['nginx']}; python {info['python']}")
    L.append(f"peers: {info['peers']}" + (f"; axum_bench (hangup's Cargo.lock): {info['axum']}"
                                            if info.get("axum", "-") != "-" else ""))
    dirty = info.get("dirty") or []
    L.append(f"hangup HEAD {info['head']}" + (f" + uncommitted changes ({', '.join(dirty)})" if dirty else " (clean)")
             + "; binaries: " + "  ".join(f"{n} {h[:12]}" for h, n in info.get("sums", [])))
    L.append(f"settings: {info['settings']}; server on cpu 0, client on cpu 1; RLIMIT_NOFILE {info.get('nofile')}")
    L.append("every figure is the median over runs; 'spread' = (max - min) / median of the headline column")
    for v, why in (info.get("preflight_failed") or {}).items():
        L.append(f"PREFLIGHT FAILED, not measured: {v}: {why}")
    summary = []

    # ------------------------------------------------ keep-alive / pipelined
    for scen, ref, target, what in (("keepalive", "hyper", T_KEEPALIVE, "keep-alive plaintext CPU/req vs hyper"),
                                    ("pipelined", "hyper-pf", T_PIPELINED,
                                     "pipelined (16) CPU/req vs hyper pipeline_flush")):
        if scen not in info["scenarios"]:
            continue
        rows = Rows(recs, scen)
        L.append("")
        L.append(f"== {TITLES[scen].format(**s)}")
        cpu_table(scen, rows, ref, L)
        a, b = rows.m("hangup", "cpu_us_req"), rows.m(ref, "cpu_us_req")
        r = ratio(a, b)
        if r is None:
            line = f"target: hangup CPU us/req <= {target:.2f} x {ref}: n/a (missing rows)"
            summary.append((what, f"<= x{target:.2f}", "n/a", "n/a"))
        else:
            allowed = b * target
            detail = (f"x{r:.2f} (hangup {a:.3f} vs {ref} {b:.3f} us/req; at most {allowed:.3f} allowed"
                      + ("" if r <= target else f": {100 * (a - allowed) / a:.0f}% of hangup's CPU/req to cut") + ")")
            line = f"target: hangup CPU us/req <= {target:.2f} x {ref}: " + verdict(r <= target, detail)
            summary.append((what, f"<= x{target:.2f}", f"x{r:.2f}",
                            "met" if r <= target else f"MISSED by {100 * (r / target - 1):.0f}%"))
        L.append(line)
        if "axum-hangup" in rows.by or "axum-hyper" in rows.by or "axum-hangup" in rows.failed:
            a, b = rows.m("axum-hangup", "cpu_us_req"), rows.m("axum-hyper", "cpu_us_req")
            r = ratio(a, b)
            kind = "keep-alive" if scen == "keepalive" else "pipelined (16)"
            what_ax = f"axum-hangup {kind} CPU/req vs axum-hyper"
            if r is None:
                L.append(f"target: axum-hangup CPU us/req <= {T_AXUM:.2f} x axum-hyper: n/a (missing rows)")
                summary.append((what_ax, f"<= x{T_AXUM:.2f}", "n/a", "n/a"))
            else:
                allowed = b * T_AXUM
                pr = paired_ratios(rows, "axum-hangup", "axum-hyper")
                if pr:
                    L.append(f"axum paired (same round) axum-hangup/axum-hyper ratios: "
                             f"{' '.join(f'x{p:.3f}' for p in sorted(pr))}; median x{statistics.median(pr):.3f}")
                detail = (f"x{r:.2f} (axum-hangup {a:.3f} vs axum-hyper {b:.3f} us/req; at most {allowed:.3f} allowed"
                          + ("" if r <= T_AXUM else f": {100 * (a - allowed) / a:.0f}% of axum-hangup's CPU/req to cut")
                          + ")")
                L.append(f"target: axum-hangup CPU us/req <= {T_AXUM:.2f} x axum-hyper: " + verdict(r <= T_AXUM, detail))
                summary.append((what_ax, f"<= x{T_AXUM:.2f}", f"x{r:.2f}",
                                "met" if r <= T_AXUM else f"MISSED by {100 * (r / T_AXUM - 1):.0f}%"))
        if scen == "pipelined":
            L.append("p99: per 16-request batch (wrk records one sample per write); "
                     "hyper = hyper without pipeline_flush, for reference; axum::serve has no pipeline_flush "
                     "(it writes once per response)")
        if rows.disturbed:
            L.append(f"WARNING: {rows.disturbed} run(s) disturbed by other processes (others > {OTHER_MAX}%)")

    # ------------------------------------------------ 1 MiB
    if "bytes1m" in info["scenarios"]:
        rows = Rows(recs, "bytes1m")
        L.append("")
        L.append(f"== {TITLES['bytes1m'].format(**s)}")
        L.append(f"{'server':15} {'runs':>4} {'GiB/s':>6} {'CPU us/MiB':>10} {'spread':>6} {'req/s':>7} {'p99':>8} "
                 f"{'srv CPU':>7} {'clnt CPU':>8} {'others':>6} {'sock err':>8} {'non-2xx':>7} "
                 f"{'GiB/s vs hyper':>14} {'CPU/MiB vs hyper':>16} {'vs best peer':>20}")
        peers = [v for v in rows.by if v != "hangup"]
        best_gib = max(peers, key=lambda v: rows.m(v, "gib_s"), default=None)
        best_cpu = min(peers, key=lambda v: rows.m(v, "cpu_us_mib"), default=None)
        for v in rows.variants():
            if v not in rows.by:
                L.append(f"{v:15} FAILED: {rows.failed[v][-1]}")
                continue
            gib, cpu = rows.m(v, "gib_s"), rows.m(v, "cpu_us_mib")
            p99 = rows.m(v, "p99_us")
            vs_best = (f"x{ratio(gib, rows.m(best_gib, 'gib_s')):.2f} / x{ratio(cpu, rows.m(best_cpu, 'cpu_us_mib')):.2f}"
                       if best_gib and best_cpu else "-")
            L.append(f"{v:15} {len(rows.by[v]):>4} {gib:>6.2f} {cpu:>10.1f} {spread(rows.vals(v, 'cpu_us_mib')):>6} "
                     f"{rows.m(v, 'rps'):>7.0f} {f(p99, '.0f') + ('us' if p99 is not None else ''):>8} "
                     f"{rows.m(v, 'srv_cpu'):>6.0f}% {rows.m(v, 'wrk_cpu'):>7.0f}% {rows.m(v, 'others'):>5.0f}% "
                     f"{rows.total(v, 'sock_err'):>8} {rows.total(v, 'non2xx'):>7} "
                     f"{xr(ratio(gib, rows.m('hyper', 'gib_s'))):>14} {xr(ratio(cpu, rows.m('hyper', 'cpu_us_mib'))):>16} "
                     f"{vs_best:>20}"
                     + (f"   ({len(rows.failed[v])} failed attempt(s))" if v in rows.failed else ""))
        L.append("GiB/s = bytes wrk read / duration (what wrk prints as Transfer/sec), 2^30 bytes; "
                 "CPU us/MiB = server CPU / MiB sent; 'vs best peer' = GiB/s ratio / CPU-per-MiB ratio")
        hg, hc = rows.m("hangup", "gib_s"), rows.m("hangup", "cpu_us_mib")
        if hg is None or best_gib is None:
            L.append("target: hangup GiB/s and CPU per MiB >= the best peer: n/a (missing rows)")
            summary.append(("1 MiB GiB/s vs best peer", ">= x1.00", "n/a", "n/a"))
            summary.append(("1 MiB CPU/MiB vs best peer", "<= x1.00", "n/a", "n/a"))
        else:
            bg, bc = rows.m(best_gib, "gib_s"), rows.m(best_cpu, "cpu_us_mib")
            rg, rc = hg / bg, hc / bc
            L.append(f"target: hangup GiB/s >= the best peer ({best_gib}, {bg:.2f} GiB/s): "
                     + verdict(rg >= 1, f"{hg:.2f} GiB/s, x{rg:.2f}"
                               + ("" if rg >= 1 else f", {100 * (1 - rg):.0f}% short")))
            L.append(f"target: hangup CPU per MiB <= the best peer ({best_cpu}, {bc:.1f} us/MiB): "
                     + verdict(rc <= 1, f"{hc:.1f} us/MiB, x{rc:.2f}"
                               + ("" if rc <= 1 else f": {100 * (1 - 1 / rc):.0f}% of hangup's CPU/MiB to cut")))
            summary.append((f"1 MiB GiB/s vs best peer ({best_gib})", ">= x1.00", f"x{rg:.2f}",
                            "met" if rg >= 1 else f"MISSED by {100 * (1 - rg):.0f}%"))
            summary.append((f"1 MiB CPU/MiB vs best peer ({best_cpu})", "<= x1.00", f"x{rc:.2f}",
                            "met" if rc <= 1 else f"MISSED by {100 * (rc - 1):.0f}%"))
        if rows.disturbed:
            L.append(f"WARNING: {rows.disturbed} run(s) disturbed by other processes (others > {OTHER_MAX}%)")

    # ------------------------------------------------ idle
    if "idle" in info["scenarios"]:
        rows = Rows(recs, "idle")
        L.append("")
        L.append(f"== {TITLES['idle'].format(**s)}")
        L.append(f"{'server':15} {'runs':>4} {'opened':>6} {'alive':>6} {'errors':>6} {'RSS base':>9} "
                 f"{'RSS idle':>9} {'KiB/conn':>8} {'spread':>6} {'(at open)':>9} {'CPU us/conn':>11} {'vs hyper':>8}")
        ref = rows.m("hyper", "kib_idle")
        for v in rows.variants():
            if v not in rows.by:
                L.append(f"{v:15} FAILED: {rows.failed[v][-1]}")
                continue
            k = rows.m(v, "kib_idle")
            L.append(f"{v:15} {len(rows.by[v]):>4} {min(rows.vals(v, 'opened')):>6} {min(rows.vals(v, 'alive')):>6} "
                     f"{rows.total(v, 'errors'):>6} {rows.m(v, 'rss0_mib'):>6.1f}MiB {rows.m(v, 'rss_idle_mib'):>6.1f}MiB "
                     f"{k:>8.2f} {spread(rows.vals(v, 'kib_idle')):>6} {rows.m(v, 'kib_open'):>9.2f} "
                     f"{rows.m(v, 'cpu_us_conn'):>11.1f} {xr(ratio(k, ref)):>8}"
                     + (f"   ({len(rows.failed[v])} failed attempt(s))" if v in rows.failed else ""))
            errs = [r["first_error"] for r in rows.by[v] if r.get("errors")]
            if errs:
                L.append(f"{'':15} first client error: {errs[0]}")
        L.append(f"KiB/conn = (server VmRSS {s['settle']} after the last connection opened - VmRSS before) / "
                 "connections opened; 'at open' = right after the last one; opened/alive: minimum over runs; "
                 "CPU us/conn = server CPU while connecting + one request, per connection")
        k = rows.m("hangup", "kib_idle")
        if k is None:
            L.append(f"target: hangup <= {T_IDLE_KIB:.0f} KiB of RSS per idle connection: n/a (missing row)")
            summary.append(("idle connection RSS (KiB/conn)", f"<= {T_IDLE_KIB:.1f}", "n/a", "n/a"))
        else:
            L.append(f"target: hangup <= {T_IDLE_KIB:.0f} KiB of RSS per idle connection: "
                     + verdict(k <= T_IDLE_KIB, f"{k:.2f} KiB" + ("" if k <= T_IDLE_KIB else f", x{k / T_IDLE_KIB:.1f} the target")))
            summary.append(("idle connection RSS (KiB/conn)", f"<= {T_IDLE_KIB:.1f}", f"{k:.2f}",
                            "met" if k <= T_IDLE_KIB else f"MISSED by {k - T_IDLE_KIB:.2f} KiB"))
            k0 = rows.m("hangup-rel0", "kib_idle")
            if k0 is not None:
                summary.append(("  same, HANGUP_IDLE_RELEASE_MS=0", f"<= {T_IDLE_KIB:.1f}", f"{k0:.2f}",
                                "met" if k0 <= T_IDLE_KIB else f"MISSED by {k0 - T_IDLE_KIB:.2f} KiB"))

    # ------------------------------------------------ detection
    if "detection" in info["scenarios"]:
        rows = Rows(recs, "detection")
        L.append("")
        L.append(f"== {TITLES['detection'].format(**s)}")
        L.append(f"{'client close':12} {'runs':>4} {'n':>6} {'median':>9} {'p99':>9} {'spread':>6} {'max':>9}")
        runs = rows.by.get("hangup", [])
        worst = None
        for leave in ("FIN", "RST"):
            got = [r[leave] for r in runs if leave in r]
            if not got:
                L.append(f"{leave:12} n/a")
                continue
            p99 = med([g["p99"] for g in got])
            worst = p99 if worst is None else max(worst, p99)
            L.append(f"{leave:12} {len(got):>4} {got[0]['n']:>6} {med([g['median'] for g in got]):>7.1f}us "
                     f"{p99:>7.1f}us {spread([g['p99'] for g in got]):>6} {max(g['max'] for g in got):>7.1f}us")
        for f_ in rows.failed.get("hangup", []):
            L.append(f"FAILED attempt: {f_}")
        L.append("median/p99: medians over runs of each run's median/p99; max: over all runs. The benchmark's output:")
        for r in runs:
            for line in r["output"]:
                L.append(f"  run {r['run']}: {line}")
        if worst is None:
            L.append("target: hang-up detection p99 < 1 ms: n/a")
            summary.append(("hang-up detection p99 (FIN, RST)", "< 1000us", "n/a", "n/a"))
        else:
            L.append("target: hang-up detection p99 < 1 ms on loopback: "
                     + verdict(worst < T_DETECT_US, f"worst of FIN/RST {worst:.1f}us"))
            summary.append(("hang-up detection p99 (worse of FIN, RST)", "< 1000us", f"{worst:.0f}us",
                            "met" if worst < T_DETECT_US else f"MISSED by {worst - T_DETECT_US:.0f}us"))
        if rows.disturbed:
            L.append(f"WARNING: {rows.disturbed} run(s) disturbed by other processes (others > {OTHER_MAX}%)")

    # ------------------------------------------------ watch
    if "watch" in info["scenarios"]:
        rows = Rows(recs, "watch")
        L.append("")
        L.append(f"== {TITLES['watch'].format(**s)}")
        cpu_table("watch", rows, "hangup-nowatch", L)
        on, off = rows.m("hangup", "cpu_us_req"), rows.m("hangup-nowatch", "cpu_us_req")
        paired = []
        on_by = {r["run"]: r["cpu_us_req"] for r in rows.by.get("hangup", [])}
        for r in rows.by.get("hangup-nowatch", []):
            if r["run"] in on_by:
                paired.append(on_by[r["run"]] / r["cpu_us_req"])
        if paired:
            L.append(f"paired (same round) on/off ratios: {' '.join(f'x{p:.3f}' for p in sorted(paired))}; "
                     f"median x{statistics.median(paired):.3f}")
        r = ratio(on, off)
        if r is None:
            L.append("target: watch on / off CPU us/req < 1.03: n/a (missing rows)")
            summary.append(("socket watch: CPU/req on vs off", f"< x{T_WATCH:.2f}", "n/a", "n/a"))
        else:
            L.append(f"target: watch on / off CPU us/req < {T_WATCH:.2f}: "
                     + verdict(r < T_WATCH, f"x{r:.3f} ({on:.3f} vs {off:.3f} us/req)"))
            summary.append(("socket watch: CPU/req on vs off", f"< x{T_WATCH:.2f}", f"x{r:.3f}",
                            "met" if r < T_WATCH else f"MISSED by {100 * (r - T_WATCH):.1f} points"))
        if rows.disturbed:
            L.append(f"WARNING: {rows.disturbed} run(s) disturbed by other processes (others > {OTHER_MAX}%)")

    # ------------------------------------------------ summary
    if summary:
        L.append("")
        L.append("== targets (hangup, ratios in this run)")
        L.append(f"{'target':48} {'wanted':>9} {'measured':>9}  verdict")
        for what, want, got, v in summary:
            L.append(f"{what:48} {want:>9} {got:>9}  {v}")
    L.append("")
    L.append("servers: " + "; ".join([
        "hangup = examples/bench_server (watch on)", "hangup-nowatch = HANGUP_SOCKET_WATCH=off",
        "hangup-rel0 = HANGUP_IDLE_RELEASE_MS=0", "hyper = hyper-hello", "hyper-pf = hyper-hello --pipeline-flush",
        "actix = actix-web 4 workers(1)", "go = net/http GOMAXPROCS=1", "nginx = 1 worker, files for /bytes/N"]
        + (["axum-hangup = examples/axum_bench (an axum Router on hangup::serve)",
            "axum-hyper = axum_bench --hyper (the same Router on axum::serve)"]
           if any(r["variant"].startswith("axum-") for r in recs) else [])))
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tables.py bench/out/<stamp>")
    sys.stdout.write(render(sys.argv[1]))
