#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the benchmarks of `make bench` against a fresh dpsd on loopback and
# writes bench/RESULTS.md; the last line printed is the headline ratio. Beside
# dpsd it starts three bench/tlsserver: the handshake baseline, and the HTTPS
# and MQTT protocol floors (--answer: the device protocol with fixed answers,
# no attestation, no store). It builds nothing: the binaries come from
# DPS_BUILD_DIR (default build/).
#
# Environment:
#   DPS_BUILD_DIR        where dpsd and bench/ binaries are (default build)
#   DPS_BENCH_SECONDS    seconds per measured run (default 8)
#   DPS_BENCH_ROUNDS     rounds of the alternated registration and baseline runs (default 6)
#   DPS_BENCH_CLIENTS    concurrent clients (default 32)
#   DPS_BENCH_SCALE      "full" for the 10,000,000 registration records of the target (about
#                        10 GB of disk), "small" for 1,000,000; by default full when the disk
#                        under TMPDIR has room for it, else small
#   DPS_BENCH_ENROLLMENTS, DPS_BENCH_REGISTRATIONS  smaller scale figures for a quick try
#   DPS_BENCH_OUT        where to write the results (default bench/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${DPS_BUILD_DIR:-build}
SECONDS_PER_RUN=${DPS_BENCH_SECONDS:-8}
ROUNDS=${DPS_BENCH_ROUNDS:-6}
CLIENTS=${DPS_BENCH_CLIENTS:-32}
OUT=${DPS_BENCH_OUT:-bench/RESULTS.md}
WORKERS=$(nproc)
ENROLLMENTS=${DPS_BENCH_ENROLLMENTS:-1000000}
SCALE=${DPS_BENCH_SCALE:-auto}
case $SCALE in
full | auto) REGISTRATIONS=10000000 ;;
small) REGISTRATIONS=1000000 ;;
*)
    echo "bench: DPS_BENCH_SCALE must be 'full' or 'small', got '$SCALE'" >&2
    exit 2
    ;;
esac
REGISTRATIONS=${DPS_BENCH_REGISTRATIONS:-$REGISTRATIONS}

for b in dpsd bench/dpsbench bench/tlsserver bench/bench_scale; do
    if [ ! -x "$BUILD/$b" ]; then
        echo "bench: '$BUILD/$b' is missing: build first (make build)" >&2
        exit 1
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dps-bench.XXXXXX")
# The full store takes about 10 GB (1,000 bytes a record); ask for 14 GB free.
if [ "$REGISTRATIONS" -ge 10000000 ]; then
    FREE_KB=$(df --output=avail -k "$WORK" | tail -n 1 | tr -d ' ')
    if [ "$FREE_KB" -lt $((14 * 1024 * 1024)) ]; then
        if [ "$SCALE" = full ]; then
            echo "bench: $((FREE_KB / 1024 / 1024)) GB free under $WORK, the full scale needs 14 GB:" \
                "free some, point TMPDIR elsewhere or set DPS_BENCH_SCALE=small" >&2
            rm -rf "$WORK"
            exit 1
        fi
        echo "bench: $((FREE_KB / 1024 / 1024)) GB free under $WORK: loading 1,000,000 registration" \
            "records instead of 10,000,000 (the full scale needs 14 GB)" >&2
        REGISTRATIONS=1000000
    fi
fi
RAW=$WORK/raw.txt
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # port seconds
    local deadline=$((SECONDS + $2))
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            echo "bench: nothing listens on port $1 after $2 s" >&2
            return 1
        fi
        sleep 0.1
    done
}

DPSD_PID=
start_dpsd() { # data-dir port [mqtt-port]
    "$BUILD/dpsd" --data-dir "$1" --hostname localhost --https-listen "127.0.0.1:$2" \
        --mqtt-listen "127.0.0.1:${3:-0}" \
        --linked-hub hub-a.example.net --workers "$WORKERS" >>"$WORK/dpsd.log" 2>&1 &
    DPSD_PID=$!
    PIDS+=("$DPSD_PID")
    wait_port "$2" 600
}

stop_dpsd() {
    kill -TERM "$DPSD_PID"
    wait "$DPSD_PID" || true
}

rss_kb() { # pid field
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

bench() { # dpsbench arguments...
    "$BUILD/bench/dpsbench" "$@" 2>>"$WORK/dpsbench.err" | tee -a "$RAW" | grep '^dpsbench:' >&2
}

echo "meta: date=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$SECONDS_PER_RUN rounds=$ROUNDS clients=$CLIENTS" \
    "workers=$WORKERS build=$BUILD commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)" \
    "load_before=$(cut -d' ' -f1 /proc/loadavg)" >"$RAW"

# ---- registrations and their baselines ----
DATA=$WORK/data
PORT=$(free_port)
MPORT=$(free_port)
start_dpsd "$DATA" "$PORT" "$MPORT"
wait_port "$MPORT" 30
"$BUILD/bench/dpsbench" pki --pki "$WORK/pki"
TLS_PID=
start_tlsserver() { # port log answer
    "$BUILD/bench/tlsserver" --listen "127.0.0.1:$1" --cert "$DATA/tls/server.pem" \
        --key "$DATA/tls/server.key" --trust "$WORK/pki/inter.pem" --workers "$WORKERS" \
        --answer "$3" 2>>"$2" &
    TLS_PID=$!
    PIDS+=("$TLS_PID")
    wait_port "$1" 30
}
stop_tlsserver() { # pid
    kill -TERM "$1"
    wait "$1" || true
}
TPORT=$(free_port)
start_tlsserver "$TPORT" "$WORK/tlsserver.log" none
BASE_PID=$TLS_PID
FHPORT=$(free_port)
start_tlsserver "$FHPORT" "$WORK/floor-https.log" https
FLOOR_HTTPS_PID=$TLS_PID
FMPORT=$(free_port)
start_tlsserver "$FMPORT" "$WORK/floor-mqtt.log" mqtt
FLOOR_MQTT_PID=$TLS_PID

COMMON=(--clients "$CLIENTS" --duration "$SECONDS_PER_RUN" --devices 2000)
run_mode() { # mode rep
    case $1 in
    handshake)
        bench handshake --connect "127.0.0.1:$TPORT" --ca "$DATA/tls/ca.pem" --pki "$WORK/pki" \
            "${COMMON[@]}" --server-pid "$BASE_PID" --label "mTLS handshake (baseline) #$2" ;;
    x509)
        bench x509 --connect "127.0.0.1:$PORT" --data-dir "$DATA" --pki "$WORK/pki" \
            "${COMMON[@]}" --server-pid "$DPSD_PID" --label "HTTPS X.509 registration #$2" ;;
    mqtt-x509)
        bench mqtt-x509 --connect "127.0.0.1:$MPORT" --service "127.0.0.1:$PORT" \
            --data-dir "$DATA" --pki "$WORK/pki" \
            "${COMMON[@]}" --server-pid "$DPSD_PID" --label "MQTT X.509 registration #$2" ;;
    handshake-server-auth)
        bench handshake-server-auth --connect "127.0.0.1:$TPORT" --ca "$DATA/tls/ca.pem" \
            "${COMMON[@]}" --server-pid "$BASE_PID" \
            --label "TLS handshake, server auth (baseline) #$2" ;;
    symkey)
        bench symkey --connect "127.0.0.1:$PORT" --data-dir "$DATA" \
            "${COMMON[@]}" --server-pid "$DPSD_PID" --label "HTTPS symmetric-key registration #$2" ;;
    mqtt-symkey)
        bench mqtt-symkey --connect "127.0.0.1:$MPORT" --service "127.0.0.1:$PORT" \
            --data-dir "$DATA" "${COMMON[@]}" --server-pid "$DPSD_PID" \
            --label "MQTT symmetric-key registration #$2" ;;
    # The floors: the same devices and requests against tlsserver --answer; dpsd
    # still enrolls the group (--service); nothing is stored, so nothing is checked.
    floor-https)
        bench symkey --connect "127.0.0.1:$FHPORT" --service "127.0.0.1:$PORT" \
            --data-dir "$DATA" --no-check "${COMMON[@]}" --server-pid "$FLOOR_HTTPS_PID" \
            --label "HTTPS protocol floor (fixed answer), symmetric key #$2" ;;
    floor-mqtt)
        bench mqtt-symkey --connect "127.0.0.1:$FMPORT" --service "127.0.0.1:$PORT" \
            --data-dir "$DATA" --no-check "${COMMON[@]}" --server-pid "$FLOOR_MQTT_PID" \
            --label "MQTT protocol floor (fixed answer), symmetric key #$2" ;;
    esac
}
# Baselines and dpsd alternate, round after round, every second round in
# mirrored order (A B C, then C B A), so that a neighbour's load, or a drift
# over the minutes, hits each baseline and the dpsd runs compared with it
# alike; more rounds narrow the ratios' spread. Each floor runs beside the
# dpsd mode it is compared with, in every round.
ORDER=(handshake x509 mqtt-x509 handshake-server-auth floor-https symkey mqtt-symkey floor-mqtt)
for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then
        for ((i = 0; i < ${#ORDER[@]}; i++)); do run_mode "${ORDER[i]}" "$round"; done
    else
        for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do run_mode "${ORDER[i]}" "$round"; done
    fi
done

# p99 at half the best X.509 rate, paced.
HALF=$(awk '/^dpsbench: mode=x509 /{for(i=1;i<=NF;i++) if($i ~ /^rate=/){split($i,a,"="); if(a[2]>m)m=a[2]}} END{printf "%.0f", m/2}' "$RAW")
if [ "${HALF:-0}" -gt 0 ]; then
    bench x509 --connect "127.0.0.1:$PORT" --data-dir "$DATA" --pki "$WORK/pki" \
        "${COMMON[@]}" --rate "$HALF" --server-pid "$DPSD_PID" \
        --label "HTTPS X.509 registration at half rate"
fi

bench service --connect "127.0.0.1:$PORT" --data-dir "$DATA" --clients 8 \
    --duration "$((SECONDS_PER_RUN * 3 / 2))"
echo "rss: phase=registrations vmrss_kb=$(rss_kb "$DPSD_PID" VmRSS) vmhwm_kb=$(rss_kb "$DPSD_PID" VmHWM)" >>"$RAW"
stop_dpsd
stop_tlsserver "$BASE_PID"
stop_tlsserver "$FLOOR_HTTPS_PID"
stop_tlsserver "$FLOOR_MQTT_PID"
tail -n 1 "$WORK/tlsserver.log" | sed 's/^tlsserver: /meta: /' >>"$RAW"
for f in https mqtt; do
    tail -n 1 "$WORK/floor-$f.log" | sed 's/^tlsserver: /floor: /' >>"$RAW"
done

# ---- scale: a store loaded through the store API, then dpsd on it ----
SDATA=$WORK/scale
SPORT=$(free_port)
start_dpsd "$SDATA" "$SPORT"
stop_dpsd
"$BUILD/bench/bench_scale" "$SDATA" "$ENROLLMENTS" "$REGISTRATIONS" scale-group | tee -a "$RAW" >&2
sync
T0=$(date +%s.%N)
start_dpsd "$SDATA" "$SPORT"
echo "meta: scale_start_s=$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN { printf "%.2f", a - b }')" >>"$RAW"
echo "rss: phase=scale_idle vmrss_kb=$(rss_kb "$DPSD_PID" VmRSS) vmhwm_kb=$(rss_kb "$DPSD_PID" VmHWM)" >>"$RAW"
bench query-page --connect "127.0.0.1:$SPORT" --data-dir "$SDATA" --group scale-group
echo "rss: phase=scale_queried vmrss_kb=$(rss_kb "$DPSD_PID" VmRSS) vmhwm_kb=$(rss_kb "$DPSD_PID" VmHWM)" >>"$RAW"
# Every enrollment over the service API, in pages of 1000: dpsbench fails
# unless it reads exactly the loaded number, in strictly increasing order.
bench page-through --connect "127.0.0.1:$SPORT" --data-dir "$SDATA" --count "$ENROLLMENTS"
echo "rss: phase=scale_paged vmrss_kb=$(rss_kb "$DPSD_PID" VmRSS) vmhwm_kb=$(rss_kb "$DPSD_PID" VmHWM)" >>"$RAW"
stop_dpsd
echo "meta: load_after=$(cut -d' ' -f1 /proc/loadavg)" >>"$RAW"

python3 bench/report.py "$RAW" "$OUT"
