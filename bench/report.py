#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns the raw lines bench/run.sh collected (dpsbench, bench_scale, rss,
floor and meta lines of key=value pairs) into bench/RESULTS.md, and prints the
headline ratio as the last line. Standard library only.

A registration run without the store check (dpsbench --no-check, checked=-1)
is a protocol floor run against tlsserver --answer, which stores nothing: it
is shown in the table and compared in "Protocol floors", and is kept out of
every target, which are dpsd's alone."""
import os
import platform
import re
import sys

REG_MODES = ("x509", "symkey", "mqtt-x509", "mqtt-symkey")


def kv(line):
    out = {}
    for m in re.finditer(r'(\w+)=("[^"]*"|\S+)', line):
        out[m.group(1)] = m.group(2)
    return out


def num(d, k, default=float("nan")):
    try:
        return float(d.get(k, default))
    except ValueError:
        return default


def machine():
    model, mem = "unknown", "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
                    break
    except OSError:
        pass
    return os.cpu_count(), model, mem, platform.release()


def against(v, target=0.8):
    """v to three places, or to as many more as it takes to show which side of the
    target it is on: 0.79966 is "0.7997", not a failing "0.800"."""
    places = 3
    while places < 8 and (float("%.*f" % (places, v)) >= target) != (v >= target):
        places += 1
    return "%.*f" % (places, v)


def cpu_section(runs, is_floor):
    """The CPU per attempt of each kind of unpaced run (means over its rounds), from
    the server_cpu_ms, client_cpu_ms and idle_pct dpsbench sampled over the measured
    seconds; no lines when no run has them."""
    kinds = (  # what, mode, floor run, the baseline's what
        ("mTLS handshake (baseline)", "handshake", False, None),
        ("TLS handshake, server auth (baseline)", "handshake-server-auth", False, None),
        ("HTTPS X.509 registration", "x509", False, "mTLS handshake (baseline)"),
        ("MQTT X.509 registration", "mqtt-x509", False, "mTLS handshake (baseline)"),
        ("HTTPS symmetric-key registration", "symkey", False,
         "TLS handshake, server auth (baseline)"),
        ("MQTT symmetric-key registration", "mqtt-symkey", False,
         "TLS handshake, server auth (baseline)"),
        ("HTTPS protocol floor, symmetric key", "symkey", True,
         "TLS handshake, server auth (baseline)"),
        ("MQTT protocol floor, symmetric key", "mqtt-symkey", True,
         "TLS handshake, server auth (baseline)"),
    )

    def means(mode, floor):
        got = {}
        for key in ("server_cpu_ms", "client_cpu_ms", "idle_pct"):
            v = [num(r, key) for r in runs if r.get("mode") == mode and is_floor(r) == floor
                 and num(r, "target_rate", 0) == 0 and num(r, key, -1) >= 0]
            got[key] = sum(v) / len(v) if v else None
        return got

    rows = [(what, means(mode, floor), base) for what, mode, floor, base in kinds]
    if not any(m["server_cpu_ms"] is not None for _, m, _ in rows):
        return []
    server = {what: m["server_cpu_ms"] for what, m, _ in rows}

    def ms(v):
        return "n/a" if v is None else "%.3f" % v

    L = ["## CPU per attempt", "",
         "dpsbench samples, over each run's measured seconds, the server process's CPU time "
         "(user + system, all its threads, from `/proc/PID/stat`) and its own (`getrusage`), "
         "each divided by the attempts measured, and the share of the machine's CPU time "
         "spent idle or waiting for I/O (`/proc/stat`); means over the rounds. Server and load "
         "generator share the cores, so the rates above follow their sum. The last column "
         "divides the baseline server's CPU by this server's: the ratio the rates would show "
         "where the devices are other machines and the server's cores are the limit. It is "
         "shown to explain the ratios above, and is no target.", "",
         "| run | server ms / attempt | load generator ms / attempt | idle % "
         "| baseline server / this server |",
         "| --- | ---: | ---: | ---: | ---: |"]
    for what, m, base in rows:
        if m["server_cpu_ms"] is None and m["client_cpu_ms"] is None:
            continue
        b, s = server.get(base), m["server_cpu_ms"]
        L.append("| %s | %s | %s | %s | %s |" % (
            what, ms(s), ms(m["client_cpu_ms"]),
            "n/a" if m["idle_pct"] is None else "%.1f" % m["idle_pct"],
            "%.3f" % (b / s) if b and s else ""))
    L.append("")
    return L


def main():
    raw, out = sys.argv[1], sys.argv[2]
    runs, service, pages, scale, rss, meta = [], [], [], {}, {}, {}
    through, floor_counters = {}, []
    with open(raw) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("dpsbench: mode=service"):
                service.append(kv(line))
            elif line.startswith("dpsbench: mode=query-page"):
                pages.append(kv(line))
            elif line.startswith("dpsbench: mode=page-through"):
                through = kv(line)
            elif line.startswith("dpsbench: "):
                d = kv(line)
                # the label has spaces: take it from the Markdown row that follows
                runs.append(d)
            elif line.startswith("| ") and runs and "row" not in runs[-1]:
                runs[-1]["row"] = line
            elif line.startswith("bench_scale: "):
                scale = kv(line)
            elif line.startswith("rss: "):
                d = kv(line)
                rss[d.get("phase")] = d
            elif line.startswith("meta: "):
                meta.update(kv(line))
            elif line.startswith("floor: "):
                floor_counters.append(kv(line))

    def label(r):
        return r["row"].split("|")[1].strip() if "row" in r else r.get("mode", "?")

    def is_floor(r):
        return r.get("mode") in REG_MODES and r.get("checked") == "-1"

    def rates(mode, paced=False):
        """The rates of dpsd's (or a baseline's) runs of mode; floors are not dpsd."""
        return [num(r, "rate") for r in runs
                if r.get("mode") == mode and not is_floor(r)
                and (num(r, "target_rate", 0) > 0) == paced]

    def floor_rates(mode):
        return [num(r, "rate") for r in runs if r.get("mode") == mode and is_floor(r)]

    def mean(v):
        return sum(v) / len(v) if v else float("nan")

    def ratio(v, base):
        return mean(v) / mean(base) if v and base and mean(base) > 0 else None

    def errors(mode, floor=False):
        return sum(int(num(r, "errors", 0)) for r in runs
                   if r.get("mode") == mode and is_floor(r) == floor)

    hs, x509 = rates("handshake"), rates("x509")
    hs_sa, sym = rates("handshake-server-auth"), rates("symkey")
    mq_x509, mq_sym = rates("mqtt-x509"), rates("mqtt-symkey")
    ratio_x, ratio_s = ratio(x509, hs), ratio(sym, hs_sa)
    ratio_mx, ratio_ms = ratio(mq_x509, hs), ratio(mq_sym, hs_sa)
    reg_runs = [r for r in runs if r.get("mode") in REG_MODES and not is_floor(r)]
    x_errors, s_errors = errors("x509"), errors("symkey")
    mx_errors, ms_errors = errors("mqtt-x509"), errors("mqtt-symkey")
    no_notify = sum(int(num(r, "closes_without_notify", 0)) for r in reg_runs)
    mqtt_ok = sum(int(num(r, "ok", 0)) for r in reg_runs if r.get("mode", "").startswith("mqtt-"))
    checked = sum(int(num(r, "checked", 0)) for r in reg_runs)
    lost = sum(int(num(r, "lost", 0)) for r in reg_runs)
    half = [r for r in runs
            if r.get("mode") == "x509" and num(r, "target_rate", 0) > 0 and not is_floor(r)]
    ncpu, model, mem, kernel = machine()

    def f2(v):
        return "n/a" if v is None or v != v else "%.2f" % v

    def pf(ok):
        return "**pass**" if ok else "**FAIL**"

    L = []
    L.append("# Benchmark results")
    L.append("")
    L.append("Written by `bench/run.sh` (`make bench`); the method is in "
             "[docs/internals/performance.md](../docs/internals/performance.md).")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("| | |")
    L.append("| --- | --- |")
    L.append("| date (UTC) | %s |" % meta.get("date", "?"))
    L.append("| commit | %s |" % meta.get("commit", "?"))
    L.append("| CPUs (`nproc`) | %s |" % ncpu)
    L.append("| CPU model | %s |" % model)
    L.append("| memory | %s |" % mem)
    L.append("| kernel | %s |" % kernel)
    L.append("| dpsd workers / tlsserver workers | %s / %s |" % (meta.get("workers", "?"),
                                                           meta.get("workers", "?")))
    L.append("| load average before / after | %s / %s |" % (meta.get("load_before", "?"),
                                                          meta.get("load_after", "?")))
    L.append("")
    L.append("The machine is shared: other builds and tests may run beside the benchmark, and "
             "the load generator runs on the same cores as the server. Absolute figures move "
             "with that load; the ratios compare runs made back to back by the same client, "
             "alternating baseline and dpsd, so they hold better than the rates.")
    spread, widest = [], 1.0
    for name, v in (("mTLS handshake", hs), ("server-auth TLS handshake", hs_sa)):
        if len(v) >= 2 and min(v) > 0:
            widest = max(widest, max(v) / min(v))
            spread.append("the %s baseline ran at %s/s (%.2f× apart)" % (
                name, ", ".join("%.0f" % x for x in v), max(v) / min(v)))
    if spread:
        L.append("")
        # Runs of one baseline more than 10 % apart say the machine was busy.
        L.append("The machine was %s during this run: %s, with nothing changed on the "
                 "server between the runs; read every figure and ratio here with that "
                 "spread in mind." % ("noisy" if widest > 1.10 else "quiet",
                                      "; ".join(spread)))
    L.append("")
    L.append("## Registrations and baselines")
    L.append("")
    L.append("Every attempt is a new TCP connection and a full TLS %s handshake (no session "
             "cache, no tickets); ECDSA P-256 server and device keys; %s concurrent clients "
             "on %s client threads; %s s per run, the first second not measured."
             % (runs[0].get("tls", "?") if runs else "?", meta.get("clients", "?"),
                runs[0].get("threads", "?") if runs else "?", meta.get("seconds", "?")))
    L.append("")
    L.append("An HTTPS registration is one `PUT .../register` answered `200 assigned`. An MQTT "
             "registration (MQTT 3.1.1 on the MQTT port over TLS) is CONNECT (client id = "
             "registration id, the DPS user name, the SAS token as password for symmetric "
             "keys), SUBSCRIBE `$dps/registrations/res/#`, the register PUBLISH at QoS 1, its "
             "PUBACK and the response PUBLISH `res/200` (a `202` is polled after its "
             "retry-after), then DISCONNECT; its latency ends at the response. The runs go "
             "baselines and dpsd alternately in %s rounds, every second round in mirrored "
             "order; each ratio below divides the mean of a mode's runs by the mean of its "
             "baseline's (#n in a row's name is its round)." % meta.get("rounds", "2"))
    if any(is_floor(r) for r in runs):
        L.append("")
        L.append("The protocol floor rows are `tlsserver --answer https|mqtt`: the same handshake, "
                 "then the device protocol answered with a fixed `assigned` reply shaped and "
                 "sized like dpsd's (one HTTP request and response; MQTT's CONNECT/CONNACK, "
                 "SUBSCRIBE/SUBACK, the register PUBLISH with its PUBACK and response, "
                 "DISCONNECT), with no attestation, no store and no JSON. They store nothing, "
                 "so nothing is checked, and they count towards no target.")
    L.append("")
    L.append("| run | clients | per second | p50 (ms) | p95 (ms) | p99 (ms) | errors "
             "| acknowledged found in the store |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        if "row" in r:
            L.append(r["row"])
    L.append("")

    def round_of(r):
        m = re.search(r"#(\d+)\s*$", label(r))
        return int(m.group(1)) if m else None

    def round_ratios(mode, base_mode):
        """Each round's dpsd rate over the same round's baseline rate, in round order."""
        out = []
        for n in sorted({round_of(r) for r in runs if round_of(r) is not None}):
            v = [num(r, "rate") for r in runs if r.get("mode") == mode and not is_floor(r)
                 and num(r, "target_rate", 0) == 0 and round_of(r) == n]
            b = [num(r, "rate") for r in runs if r.get("mode") == base_mode
                 and round_of(r) == n]
            if v and b and b[0] > 0:
                out.append(v[0] / b[0])
        return out

    per_round = [(what, round_ratios(mode, base)) for what, mode, base in (
        ("HTTPS X.509 / mTLS handshake", "x509", "handshake"),
        ("HTTPS symmetric key / server-auth handshake", "symkey", "handshake-server-auth"),
        ("MQTT X.509 / mTLS handshake", "mqtt-x509", "handshake"),
        ("MQTT symmetric key / server-auth handshake", "mqtt-symkey", "handshake-server-auth"))]
    if any(len(v) > 1 for _, v in per_round):
        L.append("Each round on its own (the round's run over the same round's baseline run), "
                 "to show the spread that the means below average out:")
        L.append("")
        n = max(len(v) for _, v in per_round)
        L.append("| ratio | " + " | ".join("round %d" % (i + 1) for i in range(n)) +
                 " | lowest | highest |")
        L.append("| --- |" + " ---: |" * (n + 2))
        for what, v in per_round:
            cells = ["%.3f" % x for x in v] + [""] * (n - len(v))
            L.append("| %s | %s | %s | %s |" % (what, " | ".join(cells),
                                                 "%.3f" % min(v) if v else "n/a",
                                                 "%.3f" % max(v) if v else "n/a"))
        L.append("")
    L.append("## Service API (keep-alive connections)")
    L.append("")
    L.append("| operation | clients | per second | p50 (ms) | p95 (ms) | p99 (ms) | errors | |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for s in service:
        L.append("| enrollment %s | %s | %s | %s | %s | %s | %s | |" % (
            s.get("op"), s.get("clients"), s.get("rate"), s.get("p50_ms"), s.get("p95_ms"),
            s.get("p99_ms"), s.get("errors")))
    L.append("")
    L.append("## Scale")
    L.append("")
    n_reg = int(num(scale, "registrations", 0))
    L.append("Loaded straight into the SQLite store with the store API (batches of 20,000 "
             "rows, one transaction each) while dpsd was stopped, then dpsd started on it. "
             "`make bench` loads the 10,000,000 registration records of the target (about "
             "10 GB of disk) when the disk has room for them, else 1,000,000 "
             "(`DPS_BENCH_SCALE=full` or `small` chooses).")
    L.append("")
    L.append("| figure | value |")
    L.append("| --- | ---: |")
    L.append("| individual enrollments loaded | %s in %s s |" % (
        "{:,}".format(int(num(scale, "enrollments", 0))), scale.get("enrollments_s", "?")))
    L.append("| registration records loaded | %s in %s s |" % (
        "{:,}".format(n_reg), scale.get("registrations_s", "?")))
    L.append("| store file | %s MB |" % scale.get("db_mb", "?"))
    L.append("| dpsd start on the loaded store | %s s |" % meta.get("scale_start_s", "?"))
    for p in pages:
        L.append("| query page of 100 %s%s, p50 / max over %s | %s / %s ms |" % (
            p.get("what"),
            " after %s pages of 1000" % p.get("skip_pages_of_1000")
            if p.get("skip_pages_of_1000") not in (None, "0") else " (first page)",
            p.get("pages"), p.get("p50_ms"), p.get("max_ms")))
    if through:
        L.append("| every individual enrollment over the API, pages of 1000 following "
                 "x-ms-continuation | %s in %s pages, %s s; ids strictly increasing, none "
                 "twice, no continuation on the last page |" % (
                     "{:,}".format(int(num(through, "items", 0))), through.get("pages"),
                     through.get("total_s")))
        L.append("| page of 1000 in that page-through, p50 / p99 / max | %s / %s / %s ms |" % (
            through.get("p50_ms"), through.get("p99_ms"), through.get("max_ms")))
    for ph in ("registrations", "scale_idle", "scale_queried", "scale_paged"):
        if ph in rss:
            L.append("| dpsd VmRSS / VmHWM, %s | %.1f / %.1f MB |" % (
                {"registrations": "after the registration runs",
                 "scale_idle": "started on the loaded store",
                 "scale_queried": "after the query pages",
                 "scale_paged": "after paging through every enrollment"}[ph],
                num(rss[ph], "vmrss_kb") / 1024, num(rss[ph], "vmhwm_kb") / 1024))
    L.append("")
    L.append("## Targets")
    L.append("")
    L.append("| target | measured | result |")
    L.append("| --- | --- | --- |")
    targets = [
        ("HTTPS X.509 registrations", "mTLS handshake rate", x509, hs, ratio_x, x_errors),
        ("symmetric-key registrations", "server-auth TLS handshake rate", sym, hs_sa, ratio_s,
         s_errors),
        ("MQTT X.509 registrations", "mTLS handshake rate", mq_x509, hs, ratio_mx, mx_errors),
        ("MQTT symmetric-key registrations", "server-auth TLS handshake rate", mq_sym, hs_sa,
         ratio_ms, ms_errors),
    ]
    for what, base, measured, baseline, r, errs in targets:
        if r is None:
            L.append("| %s ≥ 0.8 × %s | not available | |" % (what, base))
        else:
            L.append("| %s ≥ 0.8 × %s, zero errors | %.1f / %.1f = %s, %d errors | %s |" % (
                what, base, mean(measured), mean(baseline), against(r), errs,
                pf(r >= 0.8 and errs == 0)))
    if half:
        h = half[-1]
        L.append("| p99 < 25 ms at half the maximum rate | p99 %s ms at %s/s (target %s/s) "
                 "| %s |" % (h.get("p99_ms"), h.get("rate"), h.get("target_rate"),
                             pf(num(h, "p99_ms") < 25)))
    rss_scale = rss.get("scale_paged") or rss.get("scale_queried") or rss.get("scale_idle")
    if rss_scale:
        mb = num(rss_scale, "vmhwm_kb") / 1024
        if n_reg >= 10000000:
            L.append("| resident memory < 250 MB with 10,000,000 records | VmHWM %.1f MB | %s |"
                     % (mb, pf(mb < 250)))
        else:
            L.append("| resident memory < 250 MB with 10,000,000 records | VmHWM %.1f MB with "
                     "%s records (run `DPS_BENCH_SCALE=full make bench` with 14 GB free for the full size) "
                     "| %s at this size |" % (mb, "{:,}".format(n_reg), pf(mb < 250)))
    L.append("| no acknowledged registration lost | %d of %d acknowledged devices found with "
             "their last operation | %s |" % (checked - lost, checked,
                                               pf(lost == 0 and checked > 0)))
    L.append("")
    L.append("Ratios (target ≥ 0.80 each; the first is the headline `make bench` prints last):")
    L.append("")
    for name, v in (("https_x509_registrations/mtls_handshakes", ratio_x),
                    ("mqtt_x509_registrations/mtls_handshakes", ratio_mx),
                    ("https_symkey_registrations/tls_handshakes", ratio_s),
                    ("mqtt_symkey_registrations/tls_handshakes", ratio_ms)):
        L.append("- `ratio %s = %s`" % (name, "n/a" if v is None else against(v)))
    L.append("")
    if mqtt_ok:
        L.append("MQTT: dpsd closed %d of %d connections after DISCONNECT without a TLS "
                 "close_notify (OpenSSL 3 clients see \"unexpected eof while reading\"); "
                 "dpsbench does not count that as an error, as the registration was "
                 "acknowledged before." % (no_notify, mqtt_ok))
        L.append("")
    if meta.get("accepted"):
        L.append("tlsserver counters: accepted %s, verified client chains %s, without client "
                 "certificate %s, failed %s." % (meta.get("accepted"), meta.get("verified"),
                                                 meta.get("anonymous"), meta.get("failed")))
        L.append("")
    floors = []
    for mode, what, base_name, base in (
            ("symkey", "HTTPS symmetric key", "server-auth", hs_sa),
            ("mqtt-symkey", "MQTT symmetric key", "server-auth", hs_sa),
            ("x509", "HTTPS X.509", "mTLS", hs),
            ("mqtt-x509", "MQTT X.509", "mTLS", hs)):
        fl, dp = floor_rates(mode), rates(mode)
        if fl:
            floors.append((what, base_name, base, fl, dp, errors(mode, floor=True)))
    if floors:
        L.append("## Protocol floors")
        L.append("")
        L.append("How much of the gap between dpsd and the handshake is the protocol itself "
                 "and how much dpsd's own work (attestation, store, JSON): floor / handshake "
                 "is what the protocol's round trips leave of the handshake rate, dpsd / floor "
                 "the share of the floor that dpsd reaches. Means of the runs of each.")
        L.append("")
        L.append("| registration | floor / handshake baseline | dpsd / handshake baseline "
                 "| dpsd / floor | errors in floor runs |")
        L.append("| --- | --- | --- | --- | ---: |")

        def cell(v, b):
            r = ratio(v, b)
            return "%.1f / %.1f = %s" % (mean(v), mean(b), f2(r)) if r is not None else "n/a"

        for what, base_name, base, fl, dp, ferr in floors:
            L.append("| %s (%s handshake) | %s | %s | %s | %d |" % (
                what, base_name, cell(fl, base), cell(dp, base), cell(dp, fl), ferr))
        L.append("")
        for c in floor_counters:
            L.append("tlsserver --answer %s counters: accepted %s, requests answered %s, closed on "
                     "a malformed request %s, failed %s." % (
                         c.get("answer"), c.get("accepted"), c.get("answered"),
                         c.get("malformed"), c.get("failed")))
            L.append("")
    L.extend(cpu_section(runs, is_floor))
    with open(out, "w") as f:
        f.write("\n".join(L))
    print("bench: results written to %s" % out, file=sys.stderr)
    print("ratio mqtt_x509_registrations/mtls_handshakes = %s" % f2(ratio_mx))
    # The headline, required to be the last line printed.
    print("ratio https_x509_registrations/mtls_handshakes = %s" % f2(ratio_x))


if __name__ == "__main__":
    main()
