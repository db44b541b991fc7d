#!/usr/bin/env bash
# Benchmark hangup's `hello` example against a hyper 1.x peer with wrk.
#
#   bench/run-hello.sh                      # RUNS=3 DURATION=5
#   RUNS=5 DURATION=10 bench/run-hello.sh
#   SERVERS=hyper bench/run-hello.sh        # only the peer (e.g. hangup broken)
#
# Environment:
#   RUNS=3            repetitions of every (scenario, server) pair
#   DURATION=5        seconds per measured wrk run
#   WARMUP=1          seconds of unmeasured wrk load before each measured run
#   CONNECTIONS=64    wrk connections
#   PIPELINE_DEPTH=16 requests per pipelined batch
#   SERVERS="hangup hyper"   which servers, in interleaving order
#   SCENARIOS="keepalive pipelined"
#   HANGUP_PORT=3000 HYPER_PORT=3001
#   SERVER_CPU=0 WRK_CPU=1   cores to pin server and wrk to
#   QUIET_WAIT=120    seconds to wait, before each run, for other processes
#                     (someone compiling) to leave the CPUs alone
#   RETRIES=2         times a run disturbed by other processes is measured again
#   NO_BUILD=1        skip the cargo builds (use the binaries already built)
#   HANGUP_BIN, HYPER_BIN    binaries to run instead of the default builds
#
# See bench/README.md for what is measured and what the numbers mean.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-64}
PIPELINE_DEPTH=${PIPELINE_DEPTH:-16}
SERVERS=${SERVERS:-"hangup hyper"}
SCENARIOS=${SCENARIOS:-"keepalive pipelined"}
HANGUP_PORT=${HANGUP_PORT:-3000}
HYPER_PORT=${HYPER_PORT:-3001}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
QUIET_WAIT=${QUIET_WAIT:-120}
RETRIES=${RETRIES:-2}
OTHER_MAX=10      # % of one core used by others above which a run is disturbed
QUIET_SECS=3      # consecutive quiet seconds wanted before a run

HANGUP_BIN=${HANGUP_BIN:-"$ROOT/target/release/examples/hello"}
HYPER_BIN=${HYPER_BIN:-"$BENCH_DIR/peers/target/release/hyper-hello"}
EXPECTED_BODY="Hello, World!"

OUT_DIR="$BENCH_DIR/out/$(date +%Y%m%d-%H%M%S)"
RESULTS="$OUT_DIR/results.tsv"   # one line per (scenario, server, run): the kept attempt
ATTEMPTS="$OUT_DIR/attempts.tsv" # every attempt, disturbed ones included
CLK_TCK=$(getconf CLK_TCK)

SERVER_PID=""   # the one server this script is running right now, if any
LAST_LINE=""    # TSV line of the last measurement
HANGUP_COMMIT=""  # git HEAD when the binaries were built

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup

# Stop the server we started (and only it), by PID, waiting a bounded time.
stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    kill "$SERVER_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do               # up to 5 s for a clean exit
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        log "server $SERVER_PID ignored SIGTERM; sending SIGKILL"
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM   # run the EXIT trap on Ctrl-C too

# ---------------------------------------------------------------- setup

ensure_wrk() {
    command -v wrk >/dev/null && return 0
    log "installing wrk"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
}

# Builds run one after the other: the machine is shared and has 2 cores.
build() {
    if [[ "${NO_BUILD:-}" == 1 ]]; then return 0; fi
    if [[ " $SERVERS " == *" hangup "* ]]; then
        log "building hangup's hello example"
        (cd "$ROOT" && cargo build --release --example hello) \
            || die "hangup's hello example does not build (SERVERS=hyper runs the peer alone)"
    fi
    if [[ " $SERVERS " == *" hyper "* ]]; then
        log "building the hyper peer"
        cargo build --release --manifest-path "$BENCH_DIR/peers/Cargo.toml"
    fi
}

# Run copies, not the build outputs: someone working in this tree may
# rebuild target/release/examples/hello in the middle of a benchmark, and
# then half the runs would measure another binary. Their hashes go on record.
snapshot_binaries() {
    local name src
    mkdir -p "$OUT_DIR/bin"
    for name in $SERVERS; do
        case "$name" in
            hangup) src=$HANGUP_BIN ;;
            hyper)  src=$HYPER_BIN ;;
            *) die "unknown server $name (known: hangup hyper)" ;;
        esac
        [[ -x "$src" ]] || die "missing $src"
        cp "$src" "$OUT_DIR/bin/$name"
    done
    # shellcheck disable=SC2086
    (cd "$OUT_DIR/bin" && sha256sum -- $SERVERS) >"$OUT_DIR/SHA256SUMS"
    # HEAD when the binaries were taken (rev-parse only reads). The working
    # tree may hold uncommitted changes, and commits may land during the run.
    HANGUP_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)
    HANGUP_BIN="$OUT_DIR/bin/hangup"
    HYPER_BIN="$OUT_DIR/bin/hyper"
}

# ---------------------------------------------------------------- servers

port_of() {
    case "$1" in
        hangup) echo "$HANGUP_PORT" ;;
        hyper)  echo "$HYPER_PORT" ;;
        *) die "unknown server $1" ;;
    esac
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME SCENARIO: start it pinned to $SERVER_CPU, wait for its port.
start_server() {
    local name=$1 scenario=$2 port
    port=$(port_of "$name")
    # Someone else's server on our port would be measured instead of ours.
    ! port_open "$port" || die "port $port is already in use; set ${name^^}_PORT"

    local -a cmd
    case "$name" in
        hangup) cmd=("$HANGUP_BIN" "127.0.0.1:$port") ;;
        hyper)
            cmd=("$HYPER_BIN" "127.0.0.1:$port")
            # hyper at its best when pipelining: one flush per batch.
            if [[ "$scenario" == pipelined ]]; then cmd+=(--pipeline-flush); fi
            ;;
    esac
    # taskset execs the server, so $! is the server's own PID.
    taskset -c "$SERVER_CPU" "${cmd[@]}" >>"$OUT_DIR/$name.server.log" 2>&1 &
    SERVER_PID=$!

    local i
    for ((i = 0; i < 100; i++)); do              # up to 10 s to start listening
        kill -0 "$SERVER_PID" 2>/dev/null || die "$name exited at start-up (see $OUT_DIR/$name.server.log)"
        port_open "$port" && return 0
        sleep 0.1
    done
    die "$name did not accept on port $port within 10 s"
}

# A wrong answer must not be benchmarked: check one response first.
check_response() {
    local name=$1 port body
    port=$(port_of "$name")
    body=$(curl -s --max-time 5 "http://127.0.0.1:$port/") || die "$name: curl failed"
    [[ "$body" == "$EXPECTED_BODY" ]] || die "$name answered GET / with '$body', not '$EXPECTED_BODY'"
}

# "utime stime" of a process, in clock ticks (fields 14, 15 of /proc/PID/stat;
# counted after the ")" that ends field 2, since the name may hold spaces).
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat           # $1 is field 3 (state), so field N is $((N-2))
    echo "${12} ${13}"
}

# Busy ticks of the whole machine, all CPUs (first line of /proc/stat):
# user nice system idle iowait irq softirq steal -> all but idle and iowait.
# Steal counts as busy: it is the hypervisor giving our CPU to someone else.
busy_ticks() {
    local _cpu user nice system idle iowait irq softirq steal _rest
    read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
    echo $((user + nice + system + irq + softirq + steal))
}

# The machine is shared (2 cores): wait, a bounded time, until nobody else
# has used more than OTHER_MAX % of a core for QUIET_SECS seconds in a row
# (builds come in bursts), so that the run is not starved.
wait_quiet() {
    local waited quiet=0 b0 b1
    for ((waited = 0; waited < QUIET_WAIT; waited++)); do
        b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
        if (((b1 - b0) * 100 <= OTHER_MAX * CLK_TCK)); then
            if ((++quiet >= QUIET_SECS)); then
                ((waited < QUIET_SECS)) || log "machine quiet again after ${waited}s"
                return 0
            fi
        else
            quiet=0
            ((waited % 20 == 0)) && log "other processes are using the CPU; waiting (at most ${QUIET_WAIT}s)"
        fi
    done
    log "machine still busy after ${QUIET_WAIT}s; measuring anyway (the run will be flagged)"
}

# ---------------------------------------------------------------- wrk

# run_wrk SCENARIO PORT SECONDS LOGFILE
run_wrk() {
    local scenario=$1 port=$2 seconds=$3 logfile=$4 script
    case "$scenario" in
        keepalive) script="$BENCH_DIR/report.lua" ;;
        pipelined) script="$BENCH_DIR/pipeline.lua" ;;
        *) die "unknown scenario $scenario" ;;
    esac
    # `timeout` is a safety net: wrk stops by itself after $seconds.
    WRK_CONNECTIONS=$CONNECTIONS PIPELINE_DEPTH=$PIPELINE_DEPTH \
        timeout $((seconds + 30)) \
        taskset -c "$WRK_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --latency -s "$script" \
        "http://127.0.0.1:$port/" >"$logfile" 2>&1 \
        || die "wrk failed (see $logfile)"
}

# Seconds of CPU (user + sys) used by the children reaped between two
# `times` snapshots; line 2 of `times` is the children's "XmY.YYYs XmY.YYYs".
children_cpu_delta() {
    awk 'FNR == 2 {
            t = 0
            for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] }
            if (FILENAME == ARGV[1]) before = t; else after = t
        }
        END { printf "%.4f", after - before }' "$1" "$2"
}

# field KEY < "BENCH k=v k=v ..." line: print the value of KEY.
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

# measure NAME SCENARIO RUN: one server process, one measured wrk run;
# sets LAST_LINE.
measure() {
    local name=$1 scenario=$2 run=$3 port logfile
    port=$(port_of "$name")
    logfile="$OUT_DIR/$scenario.$name.$run.wrk.txt"

    wait_quiet
    start_server "$name" "$scenario"
    check_response "$name"
    if ((WARMUP > 0)); then
        run_wrk "$scenario" "$port" "$WARMUP" "$logfile.warmup"
    fi

    # Server CPU from /proc; wrk's CPU from this shell's reaped-children
    # rusage (`times`, run in this shell: a $(...) subshell has its own).
    # Whole-machine busy time minus server and wrk = what others used.
    local before after wrk_cpu_s busy0 busy1
    busy0=$(busy_ticks)
    before=$(cpu_ticks "$SERVER_PID")
    times >"$OUT_DIR/times.before"
    run_wrk "$scenario" "$port" "$DURATION" "$logfile"
    times >"$OUT_DIR/times.after"
    after=$(cpu_ticks "$SERVER_PID")
    busy1=$(busy_ticks)
    wrk_cpu_s=$(children_cpu_delta "$OUT_DIR/times.before" "$OUT_DIR/times.after")
    kill -0 "$SERVER_PID" 2>/dev/null || die "$name died during the run (see $OUT_DIR/$name.server.log)"
    stop_server

    local line requests duration_us p99 errors cpu_s user_s u0 s0 u1 s1
    line=$(grep '^BENCH ' "$logfile") || die "no BENCH line in $logfile"
    requests=$(field requests <<<"$line")
    duration_us=$(field duration_us <<<"$line")
    p99=$(field p99_us <<<"$line")
    errors=$(( $(field connect <<<"$line") + $(field read <<<"$line") \
             + $(field write <<<"$line") + $(field timeout <<<"$line") ))
    ((requests > 0)) || die "$name completed no request (see $logfile)"
    read -r u0 s0 <<<"$before"
    read -r u1 s1 <<<"$after"
    cpu_s=$(awk -v t=$((u1 + s1 - u0 - s0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.4f", t / hz }')
    user_s=$(awk -v t=$((u1 - u0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.4f", t / hz }')

    LAST_LINE=$(awk -v OFS='\t' -v n="$name" -v s="$scenario" -v r="$run" -v req="$requests" \
        -v d="$duration_us" -v p99="$p99" -v cpu="$cpu_s" -v err="$errors" \
        -v st="$(field status <<<"$line")" -v wcpu="$wrk_cpu_s" \
        -v busy=$((busy1 - busy0)) -v hz="$CLK_TCK" -v user="$user_s" 'BEGIN {
            secs = d / 1e6
            other = 100 * (busy / hz - cpu - wcpu) / secs
            if (other < 0) other = 0
            print s, n, r, req / secs, p99, cpu / req * 1e6, 100 * cpu / secs, err, st, \
                100 * wcpu / secs, other, user / req * 1e6
        }')
    printf '%s\n' "$LAST_LINE" >>"$ATTEMPTS"
    log "$(awk -F'\t' '{ printf "%-9s %-6s run %s: %9.0f req/s  p99 %6s us  %.3f CPU us/req (user %.3f)  server CPU %3.0f%%  wrk CPU %3.0f%%  others %3.0f%%  socket errors %s  non-2xx %s", $1, $2, $3, $4, $5, $6, $12, $7, $10, $11, $8, $9 }' <<<"$LAST_LINE")"
}

# measure_clean NAME SCENARIO RUN: measure; measure again (at most RETRIES
# times) while other processes disturbed the run. Keeps the last attempt.
measure_clean() {
    local attempt other
    for ((attempt = 0; attempt <= RETRIES; attempt++)); do
        measure "$@"
        other=$(cut -f11 <<<"$LAST_LINE")
        if awk -v o="$other" -v m="$OTHER_MAX" 'BEGIN { exit !(o <= m) }'; then break; fi
        ((attempt == RETRIES)) || log "others used $(printf %.0f "$other")% of a core during that run: measuring it again"
    done
    printf '%s\n' "$LAST_LINE" >>"$RESULTS"
}

# ---------------------------------------------------------------- report

# Median per (scenario, server) and the hangup/hyper ratios.
report() {
    awk -F'\t' -v servers="$SERVERS" -v scenarios="$SCENARIOS" -v other_max="$OTHER_MAX" '
    function median(key, col,    n, i, j, t, v) {
        n = split(vals[key, col], v, " ")
        for (i = 2; i <= n; i++)                    # insertion sort, n is tiny
            for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        if (n == 0) return "nan"
        return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    {
        key = $1 SUBSEP $2
        for (c = 4; c <= 12; c++) vals[key, c] = vals[key, c] " " $c
        err[key] += $8; st[key] += $9; runs[key]++
        if ($11 > other_max) busy_runs++
    }
    END {
        ns = split(servers, sv, " "); nc = split(scenarios, sc, " ")
        printf "%-10s %-7s %4s %10s %8s %11s %7s %7s %7s %6s %8s %8s\n", "scenario", "server", "runs", \
            "req/s", "p99", "CPU us/req", "(user)", "srv CPU", "wrk CPU", "others", "sock err", "non-2xx"
        for (i = 1; i <= nc; i++) {
            for (j = 1; j <= ns; j++) {
                key = sc[i] SUBSEP sv[j]
                if (!(key in runs)) continue
                rps[key] = median(key, 4); cpu[key] = median(key, 6)
                p99 = median(key, 5)
                printf "%-10s %-7s %4d %10.0f %8s %11.3f %7.3f %6.0f%% %6.0f%% %5.0f%% %8d %8d\n", \
                    sc[i], sv[j], runs[key], rps[key], (p99 == "nan" ? "n/a" : sprintf("%.0fus", p99)), \
                    cpu[key], median(key, 12), median(key, 7), median(key, 10), median(key, 11), err[key], st[key]
            }
            a = sc[i] SUBSEP "hangup"; b = sc[i] SUBSEP "hyper"
            if ((a in runs) && (b in runs) && rps[b] > 0 && cpu[b] > 0)
                printf "%-10s hangup/hyper: req/s x%.2f, CPU us/req x%.2f\n", sc[i], rps[a] / rps[b], cpu[a] / cpu[b]
        }
        if (busy_runs)
            printf "WARNING: in %d run(s) other processes used more than %d%% of a core: not a clean measurement\n", \
                busy_runs, other_max
    }' "$RESULTS"
}

# ---------------------------------------------------------------- main

main() {
    [[ "$RUNS" =~ ^[1-9][0-9]*$ && "$DURATION" =~ ^[1-9][0-9]*$ && "$WARMUP" =~ ^[0-9]+$ ]] \
        || die "RUNS and DURATION must be positive integers, WARMUP a non-negative one"
    mkdir -p "$OUT_DIR"
    ensure_wrk
    build
    snapshot_binaries

    # Other load on this 2-core machine skews everything: say so up front.
    log "load average: $(cut -d' ' -f1-3 /proc/loadavg) (should be near 0)"
    log "RUNS=$RUNS DURATION=${DURATION}s WARMUP=${WARMUP}s CONNECTIONS=$CONNECTIONS PIPELINE_DEPTH=$PIPELINE_DEPTH"
    log "raw output in $OUT_DIR"

    # Interleave servers within each round so slow drift (thermal, other
    # tenants) hits all servers alike instead of biasing one.
    local run scenario name
    for ((run = 1; run <= RUNS; run++)); do
        for scenario in $SCENARIOS; do
            for name in $SERVERS; do
                measure_clean "$name" "$scenario" "$run"
            done
        done
    done

    echo
    {
        echo "hello benchmark: medians of $RUNS runs x ${DURATION}s, wrk -t1 -c$CONNECTIONS (pipelined: depth $PIPELINE_DEPTH), server on cpu $SERVER_CPU, wrk on cpu $WRK_CPU"
        echo "hangup HEAD at build: $HANGUP_COMMIT (working tree as it was);" \
            "binaries: $(awk '{ printf "%s %s  ", $2, substr($1, 1, 12) }' "$OUT_DIR/SHA256SUMS")"
        report
        echo "p99: per request (keep-alive) or per $PIPELINE_DEPTH-request batch (pipelined), uncorrected; see README"
    } | tee "$OUT_DIR/table.txt"
}

main "$@"
