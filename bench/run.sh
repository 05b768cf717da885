#!/usr/bin/env bash
# TikSpin benchmark: the host serving a trivial Spin component vs a native hyper hello-world,
# measured in the same run so the ratio survives a noisy machine, on each of the host's cost
# profiles: `spin` (the default, which pays what Spin 4 pays) and `fast` (`tikspin up --fast`).
#
#   bash bench/run.sh          # hello (each profile) vs native: req/s, p50, p99, host/native %
#   bash bench/run.sh app      # the same, then the app targets (see `app_targets` below) on
#                              # each profile, each as % of that profile's hello, side by side
#                              # with real Spin 4.0.2's figures; then the start-up time
#   bash bench/run.sh limits   # favorite-action and comment-list-50 with the abuse limits off
#                              # and on (every request checked, none refused), each profile;
#                              # BENCH_LIMITS_KV=redis puts the key-value store on a local Redis
#   bash bench/run.sh growth   # the growth run (issue 20): the hot endpoints on a small and a
#                              # large seeded data set (bench/seed), and the ratio; see growth_run
#   bash bench/run.sh gzip     # feed-anon-30 and friend-list-100 without and with
#                              # Accept-Encoding: gzip: bytes on the wire and req/s, each profile
#   bash bench/run.sh metrics  # user-profile and feed-anon-30 with metrics off and with
#                              # --metrics-listen on (scraped every second), each profile
#   bash bench/run.sh telemetry  # user-profile and feed-anon-30 with telemetry off and with OTLP
#                              # traces on (http/protobuf to a local sink, tests/src/bin/otlp-sink.rs),
#                              # each profile; the sink's span count is logged at the end
#
# The app and its seed run with `limits_enabled=false`: the seed registers 100 users and the
# load comes from one address, which is what the limits stop. `limits` mode measures their cost
# with every rate and burst set too high to refuse anything, so each request pays the check.
#
# Environment:
#   BENCH_SECONDS=10   duration of each load run          BENCH_CONNS=64    connections
#   BENCH_THREADS=2    wrk threads                        BENCH_WARMUP=2    warm-up seconds per target
#   BENCH_BUILD=1      0: skip the cargo builds and use what is in target/
#   BENCH_KEEP=0       1: keep the temp dir (state, logs, wrk outputs) for inspection
#   BENCH_ONLY=""      app targets to run, space-separated (e.g. "friend-list-100 user-profile",
#                      "startup" for the start-up time); native and hello always run, they are
#                      what the others are compared to
#   BENCH_PROFILES="spin fast"   the host profiles to measure
#   TIKSPIN_BIN        host binary (default target/release/tikspin)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE="${1:-hello}"
PROFILES="${BENCH_PROFILES:-spin fast}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CONNS="${BENCH_CONNS:-64}"
THREADS="${BENCH_THREADS:-2}"
WARMUP="${BENCH_WARMUP:-2}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
HOST_BIN="${TIKSPIN_BIN:-$TARGET_DIR/release/tikspin}"
NATIVE_BIN="$TARGET_DIR/release/tikspin-bench-native-hello"
HELLO_WASM="$TARGET_DIR/wasm32-wasip2/release/tikspin_bench_hello.wasm"
SINK_BIN="$TARGET_DIR/release/otlp-sink"

command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tikspin-bench.XXXXXX")"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------
build() {
    [[ "${BENCH_BUILD:-1}" == 1 ]] || return 0
    log "building host, native reference and hello component (release)"
    # A failed build (e.g. a workspace member mid-edit) falls back to the artifacts in target/.
    # The default members, as `cargo run --release` selects them (so its start-up is timed with
    # nothing left to build).
    cargo build --release --bin tikspin >&2 ||
        log "WARNING: host build failed; using the existing $HOST_BIN"
    cargo build --release -p tikspin-bench-native-hello >&2 ||
        log "WARNING: native-hello build failed; using the existing $NATIVE_BIN"
    cargo build --target wasm32-wasip2 --release -p tikspin-bench-hello >&2 ||
        log "WARNING: hello component build failed; using the existing $HELLO_WASM"
    if [[ "$MODE" == telemetry ]]; then
        cargo build --release --bin otlp-sink >&2 || log "WARNING: otlp-sink build failed; using the existing $SINK_BIN"
    fi
    if [[ "$MODE" == app ]]; then
        "$HOST_BIN" build --from "$ROOT/spin.toml" >&2 || log "WARNING: app build failed; using existing components"
    fi
}

# ---------------------------------------------------------------------------------------------
# Servers: each binds port 0 and prints "Serving http://ADDR"; we read the address back.
# ---------------------------------------------------------------------------------------------
# start_server NAME CMD... → sets SERVER_URL (http://ADDR) and records the PID.
start_server() {
    local name="$1"; shift
    local out="$WORK/$name.log"
    : >"$out" # exists before the background job opens it, so the poll below can read it
    "$@" >"$out" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    local addr="" i
    for i in $(seq 1 600); do # up to 60 s (first start compiles the component)
        addr="$(sed -n 's#^Serving http://\([^ ]*\).*#\1#p' "$out" | head -n1)"
        [[ -n "$addr" ]] && break
        kill -0 "$pid" 2>/dev/null || { log "$name exited early:"; cat "$out" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n "$addr" ]] || { log "$name did not start:"; cat "$out" >&2; exit 1; }
    SERVER_URL="http://$addr"
    SERVER_PID="$pid"
    log "$name (pid $pid) on $SERVER_URL"
}

# stop_server PID: stops one server this script started.
stop_server() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local kept=() pid
    for pid in "${PIDS[@]}"; do [[ "$pid" == "$1" ]] || kept+=("$pid"); done
    PIDS=("${kept[@]+"${kept[@]}"}")
}

wait_health() {
    local url="$1" i
    for i in $(seq 1 300); do
        if curl -fsS -o /dev/null "$url/.well-known/spin/health" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "$url never became healthy"; exit 1
}

# start_host NAME MANIFEST STATE_DIR [extra tikspin args...] → SERVER_URL, SERVER_PID
start_host() {
    local name="$1" manifest="$2" state="$3"; shift 3
    mkdir -p "$state"
    start_server "$name" "$HOST_BIN" up --from "$manifest" --listen 127.0.0.1:0 \
        --state-dir "$state" --quiet --compile-cache "$TARGET_DIR/tikspin-compile-cache" "$@"
    wait_health "$SERVER_URL"
}

# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------
RESULTS=() # "profile/name|req/s|p50|p99|non2xx|errors" (profile "-" for native)
PROFILE="-" # the profile the next bench_url rows belong to

# wrk prints latencies as 812.00us / 1.23ms / 1.01s; normalise to ms.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        printf "%.2f", n }'
}

# bench_url NAME URL [METHOD] [LUA_SCRIPT]
#   Runs wrk against URL and records req/s, p50, p99. METHOD defaults to GET; anything else is
#   sent via a generated Lua script (no body). LUA_SCRIPT (a wrk script path) wins over METHOD
#   and can set bodies, headers, tokens: see `wrk --help` / wrk's scripts/ directory.
bench_url() {
    local name="$1" url="$2" method="${3:-GET}" script="${4:-}"
    selected "$name" || return 0
    local args=(-t"$THREADS" -c"$CONNS" --latency)
    if [[ -z "$script" && "$method" != GET ]]; then
        script="$WORK/method-$method.lua"
        printf 'wrk.method = "%s"\n' "$method" >"$script"
    fi
    [[ -n "$script" ]] && args+=(-s "$script")
    if [[ "$WARMUP" != 0 ]]; then
        wrk "${args[@]}" -d"${WARMUP}s" "$url" >/dev/null 2>&1 || true
    fi
    log "$PROFILE/$name: wrk ${args[*]} -d${SECONDS_PER_RUN}s $url"
    local out="$WORK/wrk-$PROFILE-$name.txt"
    wrk "${args[@]}" -d"${SECONDS_PER_RUN}s" "$url" >"$out" 2>&1 || { cat "$out" >&2; log "$name: wrk failed"; }
    local rps p50 p99 non2xx errors
    rps="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")"
    p50="$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")"
    errors="$(sed -n 's/.*Socket errors: //p' "$out")"
    RESULTS+=("$PROFILE/$name|${rps:-0}|$p50|$p99|${non2xx:-0}|${errors:-none}")
    printf '%-27s %10s req/s   p50 %8s ms   p99 %8s ms   non-2xx %s   socket errors: %s\n' \
        "$PROFILE/$name" "${rps:-0}" "$p50" "$p99" "${non2xx:-0}" "${errors:-none}"
}

# selected NAME: whether BENCH_ONLY (if set) asks for NAME; native and hello always run.
selected() {
    [[ -z "${BENCH_ONLY:-}" || "$1" == native || "$1" == hello || " $BENCH_ONLY " == *" $1 "* ]]
}

# field_of KEY N: field N of the result KEY ("profile/name"); empty if it was not measured.
field_of() {
    local r
    for r in "${RESULTS[@]}"; do
        [[ "${r%%|*}" == "$1" ]] && { echo "$r" | cut -d'|' -f"$2"; return; }
    done
}
rps_of() { field_of "$1" 2; }

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'; }

# Real Spin 4.0.2 on the same workload (same data, 64 connections, measured side by side with
# the host in one run): each app target as % of Spin's own trivial component, and that
# component as % of native. What the `spin` profile's ratios are meant to predict (within ±15%,
# relative).
declare -A SPIN_REAL=(
    [hello]=4.7 [user-profile]=30.7 [feed-anon-30]=39.6 [feed-login-30]=24.1
    [comment-list-50]=22.8 [chat-poll-empty]=30.3 [friend-list-100]=20.1 [favorite-action]=13.5
)

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'; }

# Each target on each profile: req/s, p99, and % of that profile's own hello (for hello itself:
# % of native); then real Spin's figure and how far the spin profile's lands from it.
print_table() {
    local native p name rps ratio hello real dev names=() r n
    native="$(rps_of -/native)"
    for r in "${RESULTS[@]}"; do
        n="${r%%|*}"; n="${n#*/}"
        [[ "$n" == native || " ${names[*]-} " == *" $n "* ]] || names+=("$n")
    done
    echo
    printf '%-18s' target
    for p in $PROFILES; do printf ' | %-7s %9s %9s %8s' "$p" "req/s" "p99 ms" "% hello"; done
    printf ' | %10s %10s\n' "real Spin" "spin/real"
    printf '%-18s | %-7s %9s %9s %8s |\n' native "" "$native" "$(field_of -/native 4)" ""
    for name in "${names[@]}"; do
        printf '%-18s' "$name"
        for p in $PROFILES; do
            rps="$(rps_of "$p/$name")"
            hello="$(rps_of "$p/hello")"
            if [[ "$name" == hello ]]; then ratio="$(pct "$rps" "$native")"; else ratio="$(pct "$rps" "$hello")"; fi
            printf ' | %-7s %9s %9s %8s' "" "${rps:--}" "$(field_of "$p/$name" 4)" "$ratio"
        done
        real="${SPIN_REAL[$name]:-}"
        dev="-"
        if [[ -n "$real" && " $PROFILES " == *" spin "* ]]; then
            rps="$(rps_of "spin/$name")"
            if [[ "$name" == hello ]]; then hello="$native"; else hello="$(rps_of spin/hello)"; fi
            dev="$(awk -v a="$rps" -v b="$hello" -v real="$real" 'BEGIN {
                if (a == "" || b <= 0) { print "-"; exit }
                d = 100 * (100 * a / b) / real - 100; printf "%+.0f%%%s", d, (d >= -15 && d <= 15) ? "" : " !" }')"
        fi
        printf ' | %10s %10s\n' "${real:+$real%}" "$dev"
    done
    echo
    printf '%% hello: req/s as %% of the same profile'"'"'s trivial component (hello: %% of native). real Spin: Spin 4.0.2, same\n'
    printf 'workload, %% of its own trivial component; spin/real: how far the spin profile lands from it (target ±15%%, "!" outside).\n'
    printf '%ss per target, %s connections, %s wrk threads, %s cores\n' "$SECONDS_PER_RUN" "$CONNS" "$THREADS" "$(nproc)"
    if [[ -n "${STARTUP:-}" ]]; then
        printf 'start-up, `cargo run --release` to the first healthy answer (spin profile): %s\n' "$STARTUP"
    fi
}

# ---------------------------------------------------------------------------------------------
# App targets (`bash bench/run.sh app`): the app from spin.toml, seeded once, then every target
# on each profile in turn, each profile on its own copy of the seeded state (same data, and no
# other process holding the files open while it is measured), right after that profile's hello.
# ---------------------------------------------------------------------------------------------
# seed_state: the app's benchmark data (seed_app) in $WORK/app-seed, made once per run by a host
# that is stopped afterwards; seeded_copy DIR: a fresh copy of it for one host to serve.
seed_state() {
    start_host app-seed "$ROOT/spin.toml" "$WORK/app-seed" --variable jwt_secret=bench-secret $LIMITS_OFF
    seed_app "$SERVER_URL"
    stop_server "$SERVER_PID"
}

seeded_copy() {
    rm -rf "$1"
    cp -a "$WORK/app-seed" "$1"
}

app_run() {
    local p
    seed_state
    for p in $PROFILES; do
        seeded_copy "$WORK/app-$p"
        hello_run "$p"
        start_host "app-$p" "$ROOT/spin.toml" "$WORK/app-$p" --variable jwt_secret=bench-secret --profile "$p" $LIMITS_OFF
        PROFILE="$p"
        app_targets "$SERVER_URL"
        stop_server "$SERVER_PID"
    done
}

LIMITS_OFF="--variable limits_enabled=false"
# Limits on, every bucket too large to run dry in a run: each request pays the full check
# (variables, a read and an increment per bucket) and none is refused.
LIMITS_HUGE=""
for a in register login publish favorite comment follow message read; do
    LIMITS_HUGE+=" --variable limit_${a}_per_minute=1000000000 --variable limit_${a}_burst=1000000000"
done

# `bash bench/run.sh limits`: the cost of the abuse limits on a write (favorite-action) and a
# read (comment-list-50), embedded store, off then on, each profile on its own seeded copy.
limits_run() {
    local p mode kv=()
    seed_state
    if [[ "${BENCH_LIMITS_KV:-sqlite}" == redis ]]; then
        # The buckets (and the app's other key-value data) on a local Redis, as in production.
        command -v redis-server >/dev/null || { log "redis-server is not installed"; exit 1; }
        local port
        port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
        PIDS+=("$!")
        for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
        printf '[key_value_store.default]\ntype = "redis"\nurl = "redis://127.0.0.1:%s"\n' "$port" >"$WORK/redis-kv.toml"
        kv=(--runtime-config-file "$WORK/redis-kv.toml")
        log "key-value store: Redis on 127.0.0.1:$port (pid $!)"
    fi
    for p in $PROFILES; do
        hello_run "$p"
        for mode in off on; do
            seeded_copy "$WORK/limits-$p-$mode"
            if [[ "$mode" == off ]]; then
                start_host "limits-$p-$mode" "$ROOT/spin.toml" "$WORK/limits-$p-$mode" --variable jwt_secret=bench-secret --profile "$p" $LIMITS_OFF "${kv[@]+"${kv[@]}"}"
            else
                start_host "limits-$p-$mode" "$ROOT/spin.toml" "$WORK/limits-$p-$mode" --variable jwt_secret=bench-secret --profile "$p" --variable limits_enabled=true $LIMITS_HUGE "${kv[@]+"${kv[@]}"}"
            fi
            PROFILE="$p"
            check "$SERVER_URL/douyin/comment/list/?video_id=$VIDEO" &&
                bench_url "comment-list-50-limits-$mode" "$SERVER_URL/douyin/comment/list/?video_id=$VIDEO"
            bench_url "favorite-action-limits-$mode" "$SERVER_URL/" POST "$(favorite_script)"
            stop_server "$SERVER_PID"
        done
    done
}

# `bash bench/run.sh metrics`: what the metrics cost (docs/observability.md; target < 3%). Off
# (no --metrics-listen: one Option check per recording point) and on, with /metrics scraped every
# second as Prometheus would, each profile on its own seeded copy.
metrics_run() {
    local p mode scrape_url scraper
    seed_state
    for p in $PROFILES; do
        hello_run "$p"
        for mode in off on; do
            seeded_copy "$WORK/metrics-$p-$mode"
            scraper=""
            if [[ "$mode" == off ]]; then
                start_host "metrics-$p-$mode" "$ROOT/spin.toml" "$WORK/metrics-$p-$mode" --variable jwt_secret=bench-secret --profile "$p" $LIMITS_OFF
            else
                start_host "metrics-$p-$mode" "$ROOT/spin.toml" "$WORK/metrics-$p-$mode" --variable jwt_secret=bench-secret --profile "$p" $LIMITS_OFF --metrics-listen 127.0.0.1:0
                scrape_url="$(sed -n 's#^Metrics: \(http://[^ ]*\).*#\1#p' "$WORK/metrics-$p-$mode.log" | head -n1)"
                [[ -n "$scrape_url" ]] || { log "no Metrics: line in $WORK/metrics-$p-$mode.log"; exit 1; }
                while sleep 1; do curl -fsS -o /dev/null "$scrape_url" || true; done &
                scraper=$!
                PIDS+=("$scraper")
            fi
            PROFILE="$p"
            check "$SERVER_URL/douyin/user/?token=$TOKEN" &&
                bench_url "user-profile-metrics-$mode" "$SERVER_URL/douyin/user/?token=$TOKEN"
            check "$SERVER_URL/douyin/feed/" && bench_url "feed-anon-30-metrics-$mode" "$SERVER_URL/douyin/feed/"
            [[ -n "$scraper" ]] && stop_server "$scraper"
            stop_server "$SERVER_PID"
        done
    done
}

# `bash bench/run.sh gzip`: the feed (30 videos) and the friend list of 100, without and with
# `Accept-Encoding: gzip` (encoding.rs): bytes on the wire (the response body as sent) and
# req/s, each profile on its own seeded copy.
gzip_run() {
    local p t name url
    seed_state
    local gz="$WORK/gzip.lua"
    printf 'wrk.headers["Accept-Encoding"] = "gzip"\n' >"$gz"
    for p in $PROFILES; do
        seeded_copy "$WORK/gzip-$p"
        hello_run "$p"
        start_host "gzip-$p" "$ROOT/spin.toml" "$WORK/gzip-$p" --variable jwt_secret=bench-secret --profile "$p" ${LIMITS_OFF-}
        PROFILE="$p"
        for t in "feed-anon-30|$SERVER_URL/douyin/feed/" \
            "friend-list-100|$SERVER_URL/douyin/relation/friend/list/?user_id=$FRIENDLY&token=$FRIENDLY_TOKEN"; do
            name="${t%%|*}" url="${t#*|}"
            check "$url" || continue
            # curl without --compressed counts the bytes as sent.
            log "$p/$name: $(curl -fsS -o /dev/null -w '%{size_download}' "$url") bytes plain, $(curl -fsS -o /dev/null -w '%{size_download}' -H 'Accept-Encoding: gzip' "$url") bytes gzip"
            bench_url "$name" "$url"
            bench_url "$name-gzip" "$url" GET "$gz"
        done
        stop_server "$SERVER_PID"
    done
}

# `bash bench/run.sh telemetry`: what tracing costs. Off (no OTEL_* variable: no subscriber,
# host/src/telemetry) and on, exporting every span over OTLP http/protobuf to a local sink that
# decodes nothing but the span count; each profile on its own seeded copy.
telemetry_run() {
    local p mode sink_url sink_pid
    [[ -x "$SINK_BIN" ]] || { log "missing $SINK_BIN (cargo build --release --bin otlp-sink)"; exit 1; }
    seed_state
    start_server otlp-sink "$SINK_BIN"
    sink_url="$SERVER_URL" sink_pid="$SERVER_PID"
    for p in $PROFILES; do
        hello_run "$p"
        for mode in off traces; do
            seeded_copy "$WORK/telemetry-$p-$mode"
            if [[ "$mode" == off ]]; then
                start_host "telemetry-$p-$mode" "$ROOT/spin.toml" "$WORK/telemetry-$p-$mode" --variable jwt_secret=bench-secret --profile "$p" $LIMITS_OFF
            else
                OTEL_EXPORTER_OTLP_ENDPOINT="$sink_url" start_host "telemetry-$p-$mode" "$ROOT/spin.toml" "$WORK/telemetry-$p-$mode" --variable jwt_secret=bench-secret --profile "$p" $LIMITS_OFF
            fi
            PROFILE="$p"
            check "$SERVER_URL/douyin/user/?token=$TOKEN" &&
                bench_url "user-profile-$mode" "$SERVER_URL/douyin/user/?token=$TOKEN"
            check "$SERVER_URL/douyin/feed/" && bench_url "feed-anon-30-$mode" "$SERVER_URL/douyin/feed/"
            stop_server "$SERVER_PID"
        done
    done
    stop_server "$sink_pid"
    log "$(tail -n1 "$WORK/otlp-sink.log")"
}

# hello_run PROFILE: the trivial component on that profile.
hello_run() {
    start_host "hello-$1" "$ROOT/bench/hello/spin.toml" "$WORK/hello-$1" --profile "$1"
    curl -fsS "$SERVER_URL/" | grep -qx hello || { log "host did not answer hello"; exit 1; }
    PROFILE="$1"
    bench_url hello "$SERVER_URL/"
    stop_server "$SERVER_PID"
}

# app_targets BASE: one bench_url per endpoint, for the profile serving BASE.
app_targets() {
    local B="$1"
    # Each target is checked once for status_code 0 first: business errors are HTTP 200, so
    # wrk alone would count a failing endpoint as fast.
    check "$B/douyin/user/?token=$TOKEN" && bench_url user-profile "$B/douyin/user/?token=$TOKEN"
    check "$B/douyin/feed/" && bench_url feed-anon-30 "$B/douyin/feed/"
    check "$B/douyin/feed/?token=$TOKEN" && bench_url feed-login-30 "$B/douyin/feed/?token=$TOKEN"
    check "$B/douyin/comment/list/?video_id=$VIDEO" && bench_url comment-list-50 "$B/douyin/comment/list/?video_id=$VIDEO"
    check "$B/douyin/message/chat/?token=$TOKEN&to_user_id=$PEER&pre_msg_time=$NOW_MS" &&
        bench_url chat-poll-empty "$B/douyin/message/chat/?token=$TOKEN&to_user_id=$PEER&pre_msg_time=$NOW_MS"
    check "$B/douyin/relation/friend/list/?user_id=$FRIENDLY&token=$FRIENDLY_TOKEN" &&
        bench_url friend-list-100 "$B/douyin/relation/friend/list/?user_id=$FRIENDLY&token=$FRIENDLY_TOKEN"
    bench_url favorite-action "$B/" POST "$(favorite_script)"
    bench_url login "$B/douyin/user/login/?username=bench0&password=secret123" POST
    bench_url register "$B/" POST "$(register_script)"
}

# Start-up: `cargo run --release` (what a user types, with a free port and a fresh state dir)
# until /.well-known/spin/health answers, with the compile cache cold (empty) and then warm.
# The host and the components are already built, so this is the host's own start.
startup_run() {
    selected startup && [[ -n "${BENCH_ONLY:-}" || "$MODE" == app ]] || return 0
    local cache="$WORK/startup-cache" kind t
    # Anything `cargo run` would still build happens here, not inside the timing.
    cargo run --release --quiet --bin tikspin -- --version >&2
    STARTUP=""
    for kind in cold warm; do
        t="$(startup_once "$cache" "$WORK/startup-$kind")"
        log "start-up ($kind compile cache): ${t}s"
        STARTUP+="${STARTUP:+, }$kind ${t} s"
    done
}

# startup_once CACHE STATE → seconds from launching cargo to the first healthy answer.
startup_once() {
    local cache="$1" state="$2" port start pid url
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    url="http://127.0.0.1:$port"
    start="$(date +%s.%N)"
    cargo run --release --quiet --bin tikspin -- up --build --listen "127.0.0.1:$port" \
        --state-dir "$state" --compile-cache "$cache" --quiet \
        --variable jwt_secret=bench-secret >"$state.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    until curl -fsS -o /dev/null "$url/.well-known/spin/health" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { log "cargo run exited early:"; cat "$state.log" >&2; exit 1; }
        sleep 0.05
    done
    awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
    # `cargo run` execs the host on Unix; should it have stayed the parent, stop its child too.
    stop_children "$pid"
    stop_server "$pid"
}

# stop_children PID: stops the direct children of PID, by their own ids.
stop_children() {
    local child
    for child in $(ps -o pid= --ppid "$1"); do
        kill "$child" 2>/dev/null || true
    done
}

# check URL [METHOD]: the endpoint answers status_code 0.
check() {
    local body
    body="$(curl -fsS -X "${2:-GET}" "$1")" || { log "check failed (HTTP): $1"; return 1; }
    grep -q '"status_code":0' <<<"$body" || { log "check failed: $1 → ${body:0:200}"; return 1; }
}

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

register() { curl -fsS -X POST "$1/douyin/user/register/?username=$2&password=secret123"; }

# seed_app BASE: users, 31 videos, 50 comments on one video, a user with 100 friends.
seed_app() {
    local B="$1" r i
    log "seeding the app (users, videos, comments, friends)"
    r="$(register "$B" bench0)"; TOKEN="$(json_field "['token']" <<<"$r")"
    r="$(register "$B" peer0)"; PEER="$(json_field "['user_id']" <<<"$r")"
    local clip="${TIKSPIN_FIXTURES:-$ROOT/tests/fixtures}/landscape-2s-noaudio.mp4"
    for i in $(seq 1 31); do
        curl -fsS -F "data=@$clip" -F "token=$TOKEN" -F "title=bench $i" "$B/douyin/publish/action/" >/dev/null
    done
    VIDEO="$(curl -fsS "$B/douyin/feed/" | json_field "['video_list'][0]['id']")"
    for i in $(seq 1 50); do
        curl -fsS -X POST "$B/douyin/comment/action/?token=$TOKEN&video_id=$VIDEO&action_type=1&comment_text=comment%20$i" >/dev/null
    done
    r="$(register "$B" friendly)"; FRIENDLY="$(json_field "['user_id']" <<<"$r")"; FRIENDLY_TOKEN="$(json_field "['token']" <<<"$r")"
    : >"$WORK/tokens.txt"
    for i in $(seq 1 100); do
        r="$(register "$B" "fan$i")"
        local t id; t="$(json_field "['token']" <<<"$r")"; id="$(json_field "['user_id']" <<<"$r")"
        echo "$t" >>"$WORK/tokens.txt"
        curl -fsS -X POST "$B/douyin/relation/action/?token=$t&to_user_id=$FRIENDLY&action_type=1" >/dev/null
        curl -fsS -X POST "$B/douyin/relation/action/?token=$FRIENDLY_TOKEN&to_user_id=$id&action_type=1" >/dev/null
        curl -fsS -X POST "$B/douyin/message/action/?token=$t&to_user_id=$FRIENDLY&action_type=1&content=hi%20$i" >/dev/null
    done
    VIDEO_IDS="$(curl -fsS "$B/douyin/feed/" | python3 -c "import json,sys; print(' '.join(str(v['id']) for v in json.load(sys.stdin)['video_list']))")"
    NOW_MS="$(($(date +%s) * 1000))"
    log "seeded: video $VIDEO, friendly user $FRIENDLY, $(wc -l <"$WORK/tokens.txt") fans"
}

# Likes and unlikes by 100 users over 30 videos: every request is a write transaction.
favorite_script() {
    local f="$WORK/favorite.lua"
    {
        echo 'local tokens, videos, n = {}, {'"${VIDEO_IDS// /,}"'}, 0'
        echo 'for line in io.lines("'"$WORK/tokens.txt"'") do tokens[#tokens + 1] = line end'
        echo 'function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1000000)) end'
        echo 'function request()'
        echo '  n = n + 1'
        echo '  local t = tokens[math.random(#tokens)]'
        echo '  local v = videos[math.random(#videos)]'
        echo '  return wrk.format("POST", "/douyin/favorite/action/?token=" .. t .. "&video_id=" .. v .. "&action_type=" .. (n % 2 + 1))'
        echo 'end'
    } >"$f"
    echo "$f"
}

# A fresh username per request: argon2id-bound.
register_script() {
    local f="$WORK/register.lua"
    {
        echo 'local n, tag = 0, 0'
        echo 'function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1000000)); tag = math.random(1, 1000000000) end'
        echo 'function request()'
        echo '  n = n + 1'
        echo '  return wrk.format("POST", "/douyin/user/register/?username=r" .. tag .. "x" .. n .. "&password=secret123")'
        echo 'end'
    } >"$f"
    echo "$f"
}

# `bash bench/run.sh growth`: issue 20's growth run. The same endpoints on a small data set and
# on a large one (both from `bench/seed`, SQLite, spin profile unless BENCH_PROFILES says one
# other), then per endpoint req/s and p50/p99 at each scale and the ratio (target ≤ 1.5×).
# BENCH_GROWTH_SMALL=1000 and BENCH_GROWTH_LARGE=1 are `bench/seed --divide` values: 1000 is
# 100 users and 1k videos, 1 the full 100k users and 1M videos (a 5-minute seed here).
growth_run() {
    local p="${PROFILES%% *}" scale
    cargo build --release --quiet --bin seed >&2 || log "WARNING: seed build failed; using the existing one"
    for scale in small large; do
        local divide state="$WORK/growth-$scale"
        if [[ "$scale" == small ]]; then divide="${BENCH_GROWTH_SMALL:-1000}"; else divide="${BENCH_GROWTH_LARGE:-1}"; fi
        mkdir -p "$state"
        log "seeding the $scale data set (bench/seed --divide $divide)"
        local t0=$SECONDS
        "$TARGET_DIR/release/seed" --sqlite "$state/sqlite_db.db" --divide "$divide" >&2
        log "seeded in $((SECONDS - t0)) s"
        growth_subjects "$state/sqlite_db.db"
        start_host "growth-$scale" "$ROOT/spin.toml" "$state" --variable jwt_secret=bench-secret --profile "$p" $LIMITS_OFF \
            --variable seed_welcome_video=false
        growth_targets "$SERVER_URL" "$scale"
        stop_server "$SERVER_PID"
    done
    print_growth
}

# growth_subjects DB: the ids each growth target reads, picked from the seeded rows (the
# biggest of each kind, so the large scale is the worst case).
growth_subjects() {
    eval "$(python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
one = lambda q: db.execute(q).fetchone()
big = one("SELECT id FROM users ORDER BY follower_count DESC, id LIMIT 1")[0]
prolific = one("SELECT id FROM users ORDER BY work_count DESC, id LIMIT 1")[0]
liker = one("SELECT id FROM users ORDER BY favorite_count DESC, id LIMIT 1")[0]
video = one("SELECT id FROM videos ORDER BY comment_count DESC, id LIMIT 1")[0]
friendly = one("SELECT follower_id FROM follows WHERE friend_since IS NOT NULL GROUP BY follower_id ORDER BY COUNT(*) DESC, follower_id LIMIT 1")[0]
lo, hi = one("SELECT user_lo, user_hi FROM messages GROUP BY user_lo, user_hi ORDER BY COUNT(*) DESC LIMIT 1")
n = one("SELECT COUNT(*) FROM videos")[0]
deep = one(f"SELECT created_at FROM videos ORDER BY created_at LIMIT 1 OFFSET {n // 2}")[0]
deep_ms = deep * 1000 if deep < 10**11 else deep
print(f"G_BIG={big} G_PROLIFIC={prolific} G_LIKER={liker} G_VIDEO={video} G_FRIENDLY={friendly} G_LO={lo} G_HI={hi} G_DEEP_MS={deep_ms}")
PY
)"
    log "growth subjects: most followed $G_BIG, most works $G_PROLIFIC, most likes given $G_LIKER, most commented video $G_VIDEO, most friends $G_FRIENDLY, busiest chat $G_LO-$G_HI, feed page at $G_DEEP_MS"
}

# seed_token BASE USER_ID: a token of a seeded user (`seed_<id>`, tests/src/seed).
seed_token() {
    curl -fsS -X POST "$1/douyin/user/login/?username=seed_$2&password=seed-password" | json_field '["token"]'
}

growth_targets() {
    local B="$1" scale="$2" t_big t_lo t_friendly now_ms
    PROFILE="$scale"
    t_big="$(seed_token "$B" "$G_BIG")"
    t_lo="$(seed_token "$B" "$G_LO")"
    t_friendly="$(seed_token "$B" "$G_FRIENDLY")"
    now_ms="$(($(date +%s) * 1000 + 60000))"
    growth_url feed-anon "$B/douyin/feed/"
    growth_url feed-login "$B/douyin/feed/?token=$t_big"
    growth_url feed-deep "$B/douyin/feed/?latest_time=$G_DEEP_MS"
    growth_url user-profile-big "$B/douyin/user/?user_id=$G_BIG&token=$t_big"
    growth_url publish-list-prolific "$B/douyin/publish/list/?user_id=$G_PROLIFIC&token=$t_big"
    growth_url favorite-list "$B/douyin/favorite/list/?user_id=$G_LIKER&token=$t_big"
    growth_url comment-list-top "$B/douyin/comment/list/?video_id=$G_VIDEO&token=$t_big"
    growth_url follow-list-big "$B/douyin/relation/follow/list/?user_id=$G_BIG&token=$t_big"
    growth_url follower-list-big "$B/douyin/relation/follower/list/?user_id=$G_BIG&token=$t_big"
    growth_url friend-list "$B/douyin/relation/friend/list/?user_id=$G_FRIENDLY&token=$t_friendly"
    growth_url chat-history "$B/douyin/message/chat/?token=$t_lo&to_user_id=$G_HI&pre_msg_time=0"
    growth_url chat-poll-empty "$B/douyin/message/chat/?token=$t_lo&to_user_id=$G_HI&pre_msg_time=$now_ms"
}

growth_url() {
    check "$2" && bench_url "$1" "$2"
}

print_growth() {
    echo
    printf '%-22s | %9s %8s %8s | %9s %8s %8s | %7s %7s\n' target "small r/s" "p50 ms" "p99 ms" "large r/s" "p50 ms" "p99 ms" "r/s ×" "p99 ×"
    local row name small large
    for row in "${RESULTS[@]}"; do
        [[ "$row" == small/* ]] || continue
        name="${row%%|*}"; name="${name#small/}"
        small="$row"
        large="$(printf '%s\n' "${RESULTS[@]}" | grep "^large/$name|" | head -n1)"
        IFS='|' read -r _ s_rps s_p50 s_p99 _ _ <<<"$small"
        IFS='|' read -r _ l_rps l_p50 l_p99 _ _ <<<"${large:-x|0|0|0|0|0}"
        printf '%-22s | %9s %8s %8s | %9s %8s %8s | %7s %7s\n' "$name" "$s_rps" "$s_p50" "$s_p99" "$l_rps" "$l_p50" "$l_p99" \
            "$(awk -v a="$s_rps" -v b="$l_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" \
            "$(awk -v a="$s_p99" -v b="$l_p99" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')"
    done
    echo "r/s ×: small req/s over large (target ≤ 1.5); p99 ×: large p99 over small. ${SECONDS_PER_RUN}s per target, $CONNS connections."
}

# ---------------------------------------------------------------------------------------------
build
[[ -x "$HOST_BIN" && -x "$NATIVE_BIN" && -f "$HELLO_WASM" ]] || { log "missing build artifacts"; exit 1; }

start_server native "$NATIVE_BIN" --listen 127.0.0.1:0
NATIVE_URL="$SERVER_URL"
wait_health "$NATIVE_URL"
PROFILE="-"
bench_url native "$NATIVE_URL/"

case "$MODE" in
    hello) for p in $PROFILES; do hello_run "$p"; done ;;
    app) app_run ;;
    limits) limits_run ;;
    gzip) gzip_run ;;
    metrics) metrics_run ;;
    telemetry) telemetry_run ;;
    growth) growth_run; exit 0 ;;
    *) log "unknown mode $MODE (hello | app | limits | gzip | telemetry | metrics | growth)"; exit 2 ;;
esac
startup_run

print_table
