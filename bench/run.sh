#!/usr/bin/env bash
# TikSpin benchmark: the host serving a trivial Spin component vs a native hyper hello-world,
# measured in the same run so the ratio survives a noisy machine.
#
#   bash bench/run.sh          # hello (host) vs native, prints req/s, p50, p99 and host/native %
#   bash bench/run.sh app      # the same, then the app targets (see `app_targets` below)
#
# Environment:
#   BENCH_SECONDS=10   duration of each load run          BENCH_CONNS=64    connections
#   BENCH_THREADS=2    wrk threads                        BENCH_WARMUP=2    warm-up seconds per target
#   BENCH_BUILD=1      0: skip the cargo builds and use what is in target/
#   BENCH_KEEP=0       1: keep the temp dir (state, logs, wrk outputs) for inspection
#   BENCH_ONLY=""      app targets to run, space-separated (e.g. "friend-list-100 user-profile");
#                      native and host-hello always run, they are what the others are compared to
#   TIKSPIN_BIN        host binary (default target/release/tikspin)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE="${1:-hello}"
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CONNS="${BENCH_CONNS:-64}"
THREADS="${BENCH_THREADS:-2}"
WARMUP="${BENCH_WARMUP:-2}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
HOST_BIN="${TIKSPIN_BIN:-$TARGET_DIR/release/tikspin}"
NATIVE_BIN="$TARGET_DIR/release/tikspin-bench-native-hello"
HELLO_WASM="$TARGET_DIR/wasm32-wasip2/release/tikspin_bench_hello.wasm"

command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tikspin-bench.XXXXXX")"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
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
    cargo build --release --bin tikspin -p tikspin-host >&2 ||
        log "WARNING: host build failed; using the existing $HOST_BIN"
    cargo build --release -p tikspin-bench-native-hello >&2 ||
        log "WARNING: native-hello build failed; using the existing $NATIVE_BIN"
    cargo build --target wasm32-wasip2 --release -p tikspin-bench-hello >&2 ||
        log "WARNING: hello component build failed; using the existing $HELLO_WASM"
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
    log "$name (pid $pid) on $SERVER_URL"
}

wait_health() {
    local url="$1" i
    for i in $(seq 1 300); do
        if curl -fsS -o /dev/null "$url/.well-known/spin/health" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "$url never became healthy"; exit 1
}

# start_host NAME MANIFEST [extra tikspin args...] → SERVER_URL
start_host() {
    local name="$1" manifest="$2"; shift 2
    mkdir -p "$WORK/$name-state"
    start_server "$name" "$HOST_BIN" up --from "$manifest" --listen 127.0.0.1:0 \
        --state-dir "$WORK/$name-state" --quiet --compile-cache "$TARGET_DIR/tikspin-compile-cache" "$@"
    wait_health "$SERVER_URL"
}

# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------
RESULTS=() # "name|req/s|p50|p99|non2xx|errors"

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
    if [[ -n "${BENCH_ONLY:-}" && "$name" != native && "$name" != host-hello && " $BENCH_ONLY " != *" $name "* ]]; then
        return 0
    fi
    local args=(-t"$THREADS" -c"$CONNS" --latency)
    if [[ -z "$script" && "$method" != GET ]]; then
        script="$WORK/method-$method.lua"
        printf 'wrk.method = "%s"\n' "$method" >"$script"
    fi
    [[ -n "$script" ]] && args+=(-s "$script")
    if [[ "$WARMUP" != 0 ]]; then
        wrk "${args[@]}" -d"${WARMUP}s" "$url" >/dev/null 2>&1 || true
    fi
    log "$name: wrk ${args[*]} -d${SECONDS_PER_RUN}s $url"
    local out="$WORK/wrk-$name.txt"
    wrk "${args[@]}" -d"${SECONDS_PER_RUN}s" "$url" >"$out" 2>&1 || { cat "$out" >&2; log "$name: wrk failed"; }
    local rps p50 p99 non2xx errors
    rps="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")"
    p50="$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")"
    errors="$(sed -n 's/.*Socket errors: //p' "$out")"
    RESULTS+=("$name|${rps:-0}|$p50|$p99|${non2xx:-0}|${errors:-none}")
    printf '%-22s %10s req/s   p50 %8s ms   p99 %8s ms   non-2xx %s   socket errors: %s\n' \
        "$name" "${rps:-0}" "$p50" "$p99" "${non2xx:-0}" "${errors:-none}"
}

rps_of() {
    local r
    for r in "${RESULTS[@]}"; do
        [[ "${r%%|*}" == "$1" ]] && { echo "$r" | cut -d'|' -f2; return; }
    done
    echo 0
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }'; }

# Both ratios: "% native" for the host itself, "% hello" (of the trivial component through the
# same host, same run) for the app targets, which is what the issues' targets are stated in.
print_table() {
    echo
    printf '%-22s %12s %10s %10s %10s %10s %8s\n' target "req/s" "p50 ms" "p99 ms" "% native" "% hello" "non-2xx"
    local native hello r name rps p50 p99 non2xx errors
    native="$(rps_of native)"
    hello="$(rps_of host-hello)"
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r name rps p50 p99 non2xx errors <<<"$r"
        printf '%-22s %12s %10s %10s %10s %10s %8s\n' "$name" "$rps" "$p50" "$p99" \
            "$(pct "$rps" "$native")" "$(pct "$rps" "$hello")" "$non2xx"
    done
    echo
    printf 'host/native = %s   (target >= 15%%; %ss per target, %s connections, %s wrk threads, %s cores)\n' \
        "$(pct "$hello" "$native")" "$SECONDS_PER_RUN" "$CONNS" "$THREADS" "$(nproc)"
}

# ---------------------------------------------------------------------------------------------
# App targets (`bash bench/run.sh app`). HOOK for the lead: start the real app from spin.toml
# (start_host sets $SERVER_URL), seed what the endpoints need (e.g. register a user with curl
# and capture its token), then call bench_url once per endpoint, e.g.
#     bench_url app-feed "$SERVER_URL/douyin/feed/"
#     bench_url app-login "$SERVER_URL/douyin/user/login/?username=u&password=p" POST
#     bench_url app-publish "$SERVER_URL/douyin/publish/action/" POST "$ROOT/bench/publish.lua"
# Every bench_url row lands in the final table with its % of the native figure.
# ---------------------------------------------------------------------------------------------
app_targets() {
    start_host app "$ROOT/spin.toml" --variable jwt_secret=bench-secret
    local B="$SERVER_URL"
    seed_app "$B"
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

# ---------------------------------------------------------------------------------------------
build
[[ -x "$HOST_BIN" && -x "$NATIVE_BIN" && -f "$HELLO_WASM" ]] || { log "missing build artifacts"; exit 1; }

start_server native "$NATIVE_BIN" --listen 127.0.0.1:0
NATIVE_URL="$SERVER_URL"
wait_health "$NATIVE_URL"
start_host host-hello "$ROOT/bench/hello/spin.toml"
HOST_URL="$SERVER_URL"
curl -fsS "$HOST_URL/" | grep -qx hello || { log "host did not answer hello"; exit 1; }

bench_url native "$NATIVE_URL/"
bench_url host-hello "$HOST_URL/"

case "$MODE" in
    hello) ;;
    app) app_targets ;;
    *) log "unknown mode $MODE (hello | app)"; exit 2 ;;
esac

print_table
