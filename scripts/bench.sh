#!/usr/bin/env bash
# Reproduces the issue 16 table of docs/PERFORMANCE.md: the HTTP floor of this machine, the
# server kit's /auth/me (wrk) and its ratio to the floor, refresh (loadgen, SQLite), two
# PostgreSQL instances with Redis, the crypto and gate benches, the client core; each figure
# the median of 3 runs, printed as a markdown table at the end.
#
#   scripts/bench.sh                   # floor me refresh scale crypto gate client
#   scripts/bench.sh floor me          # only those sections
#   scripts/bench.sh all python kotlin # and the bindings (slow builds; see below)
#
# Sections:
#   floor    bare axum handler, constant /auth/me-sized body: wrk -t2 -c16 -d5s
#   me       holdfast-server on a fresh SQLite database, GET /auth/me with a bearer token,
#            same wrk command; also runs `floor` (the ratio needs it)
#   refresh  loadgen --scenario refresh --requests 20000 --concurrency 8 (SQLite)
#   scale    loadgen --instances 2 on PostgreSQL + Redis, scenarios me and refresh
#   crypto   cargo bench --bench crypto (hs256, P-256 proof verification, password hashes)
#   gate     cargo bench --bench gate (sync-gate admissions)
#   client   cargo bench -p holdfast-core --bench session (access_token, cold start)
#   python   access_token() from Python with the mobile-profile library; needs
#            `bash bindings/python/run_tests.sh` first (not in the default set)
#   kotlin   bindings/kotlin/bench.sh; needs `bash bindings/kotlin/run_tests.sh` first
#            (not in the default set)
#
# Before each run it waits until no cargo, rustc or C compiler of anyone else runs and the
# CPUs are idle enough, and a run during which one started is thrown away and repeated; it
# gives up (exit 3) rather than report a figure measured next to a compiler.
#
# Environment: BENCH_RUNS (3), BENCH_QUIET_WAIT seconds to wait for quiet before refusing
# (600), BENCH_MIN_IDLE percent of CPU idle required over 2 s before a run (80; 0 turns the
# check off), BENCH_RETRIES noisy runs thrown away before refusing (3), BENCH_DATABASE
# (postgres://127.0.0.1:5432/test), BENCH_REDIS (redis://127.0.0.1:6379), BENCH_PORT_FLOOR and
# BENCH_PORT_SERVER (0: free ports), CARGO_TARGET_DIR. BENCH_UNGUARDED=1 skips the quiet-machine
# checks, for trying the script out: its table then says the figures are not to be reported.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

runs="${BENCH_RUNS:-3}"
quiet_wait="${BENCH_QUIET_WAIT:-600}"
min_idle="${BENCH_MIN_IDLE:-80}"
retries="${BENCH_RETRIES:-3}"
database="${BENCH_DATABASE:-postgres://127.0.0.1:5432/test}"
redis="${BENCH_REDIS:-redis://127.0.0.1:6379}"
port_floor="${BENCH_PORT_FLOOR:-0}"
port_server="${BENCH_PORT_SERVER:-0}"
unguarded="${BENCH_UNGUARDED:-0}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="$target_dir/release"
criterion="$target_dir/criterion"
email="bench-user@example.com"
password="correct horse battery staple"
wrk_args=(-t2 -c16 -d5s)

die() { echo "bench.sh: $*" >&2; exit 1; }
# Exits with 3, after printing what was measured so far as an incomplete table.
incomplete=""
refuse() {
    echo "bench.sh: $*" >&2
    incomplete="$*"
    if declare -F print_table >/dev/null; then
        print_table
    fi
    exit 3
}
say() { printf '\n== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- sections

default_sections=(floor me refresh scale crypto gate client)
all_sections=(floor me refresh scale crypto gate client python kotlin)
declare -A want=()
if [ "$#" -eq 0 ]; then
    set -- all
fi
for arg in "$@"; do
    case "$arg" in
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        all) for s in "${default_sections[@]}"; do want[$s]=1; done ;;
        *)
            known=0
            for s in "${all_sections[@]}"; do [ "$s" = "$arg" ] && known=1; done
            [ "$known" = 1 ] || die "unknown section '$arg' (sections: ${all_sections[*]}, all)"
            want[$arg]=1
            ;;
    esac
done
[ -n "${want[me]:-}" ] && want[floor]=1
wants() { [ -n "${want[$1]:-}" ]; }

watcher=""
work="$(mktemp -d "${TMPDIR:-/tmp}/holdfast-bench.XXXXXX")"
children=()
cleanup() {
    local pid
    [ -z "$watcher" ] || kill "$watcher" 2>/dev/null || true
    for pid in "${children[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- quiet machine

# Succeeds when PID is this script or one of its descendants.
ours() {
    local pid="$1"
    while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
        [ "$pid" = "$$" ] && return 0
        pid="$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" || return 1
    done
    return 1
}

# The compilers and cargos of others that are running now, as "PID NAME" lines.
foreign_builds() {
    local pid name
    # (pgrep warns about a pattern longer than a process name; the alternatives are shorter.)
    for pid in $(pgrep -x 'cargo|rustc|cc1|cc1plus|cc|c\+\+|clang|ld|ld\.lld|rust-lld|collect2' 2>/dev/null || true); do
        name="$(ps -o comm= -p "$pid" 2>/dev/null || true)"
        [ -n "$name" ] || continue # already gone
        ours "$pid" || echo "$pid $name"
    done
}

# Percent of CPU time idle over 2 s.
idle_percent() {
    local _c u1 n1 s1 i1 w1 q1 sq1 st1 u2 n2 s2 i2 w2 q2 sq2 st2 _rest
    read -r _c u1 n1 s1 i1 w1 q1 sq1 st1 _rest </proc/stat
    sleep 2
    read -r _c u2 n2 s2 i2 w2 q2 sq2 st2 _rest </proc/stat
    local total=$(((u2 + n2 + s2 + i2 + w2 + q2 + sq2 + st2) - (u1 + n1 + s1 + i1 + w1 + q1 + sq1 + st1)))
    local idle=$(((i2 + w2) - (i1 + w1)))
    [ "$total" -gt 0 ] || total=1
    echo $((100 * idle / total))
}

# Waits until no foreign build runs and the CPUs are idle enough; refuses (exit 3) after
# $quiet_wait seconds.
wait_quiet() {
    [ "$unguarded" = 1 ] && return 0
    local deadline=$((SECONDS + quiet_wait)) builds idle reason="" told=0
    while :; do
        builds="$(foreign_builds)"
        if [ -z "$builds" ]; then
            if [ "$min_idle" -le 0 ]; then
                return 0
            fi
            idle="$(idle_percent)"
            if [ "$idle" -ge "$min_idle" ] && [ -z "$(foreign_builds)" ]; then
                return 0
            fi
            reason="the CPUs were ${idle}% idle over 2 s (BENCH_MIN_IDLE=$min_idle)"
        else
            reason="others' builds are running: $(echo "$builds" | tr '\n' ' ')"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            refuse "refusing to measure: $reason; waited ${quiet_wait} s (BENCH_QUIET_WAIT)"
        fi
        if [ "$told" = 0 ] || [ $((SECONDS % 30)) -lt 3 ]; then
            echo "   waiting for a quiet machine: $reason" >&2
            told=1
        fi
        sleep 2
    done
}

# A background watcher that notes every foreign build seen while a run measures.
watch_start() {
    : >"$work/noise"
    (
        while :; do
            foreign_builds >>"$work/noise"
            sleep 0.5
        done
    ) &
    watcher=$!
}
# Fails when the watcher saw a foreign build.
watch_stop() {
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    watcher=""
    [ "$unguarded" = 1 ] || [ ! -s "$work/noise" ]
}

# Runs `$1` (a one_* function that prints its figures as `KEY VALUE` lines) on a quiet
# machine and records its figures; a run disturbed by a build is thrown away and repeated.
guarded() {
    local attempt=0 out="$work/figures"
    while :; do
        wait_quiet
        watch_start
        # Not in a condition: errexit stays on inside the function.
        "$1" >"$out"
        if watch_stop; then
            local key value
            while read -r key value; do
                record "$key" "$value"
            done <"$out"
            return 0
        fi
        attempt=$((attempt + 1))
        echo "   run thrown away: a build started meanwhile ($(sort -u "$work/noise" | tr '\n' ' '))" >&2
        if [ "$attempt" -ge "$retries" ]; then
            refuse "refusing to report: $retries runs of $1 were disturbed by others' builds"
        fi
    done
}

# ---------------------------------------------------------------- results

declare -A values=() labels=() commands=() units=() targets=()
order=()
# figure KEY LABEL UNIT TARGET COMMAND: declares a figure (UNIT: rps, ns, ms, us).
figure() {
    order+=("$1")
    labels[$1]="$2"
    units[$1]="$3"
    targets[$1]="$4"
    commands[$1]="$5"
    values[$1]=""
}
record() {
    [ -n "${labels[$1]+x}" ] || die "internal: undeclared figure $1"
    [[ "$2" =~ ^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]] || die "not a figure for $1: '$2'"
    values[$1]="${values[$1]:+${values[$1]} }$2"
}
# The arguments joined with ", ".
join() {
    local out="" v
    for v in "$@"; do out="${out:+$out, }$v"; done
    echo "$out"
}
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# format UNIT VALUE: a readable figure.
format() {
    case "$1" in
        rps) awk -v v="$2" 'BEGIN { s = sprintf("%.0f", v); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); print s " req/s" }' ;;
        ns) awk -v v="$2" 'BEGIN { if (v >= 1e6) printf "%.3g ms\n", v / 1e6; else if (v >= 1e3) printf "%.3g µs\n", v / 1e3; else printf "%.3g ns\n", v }' ;;
        us) awk -v v="$2" 'BEGIN { printf "%.3g µs\n", v }' ;;
        ratio) awk -v v="$2" 'BEGIN { printf "%.2f×\n", v }' ;;
        *) echo "$2" ;;
    esac
}

# ---------------------------------------------------------------- helpers

# start_server LOG BINARY ARGS...: starts a server that prints `listening on http://ADDR`
# first; sets $server_pid and $server_url.
start_server() {
    local log="$1"
    shift
    "$@" >"$log.out" 2>"$log.err" &
    server_pid=$!
    children+=("$server_pid")
    local i line
    for ((i = 0; i < 300; i++)); do
        line="$(head -n 1 "$log.out" 2>/dev/null || true)"
        case "$line" in
            "listening on "*)
                server_url="${line#listening on }"
                return 0
                ;;
        esac
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log.err" >&2 || true
    die "$1 did not print \`listening on http://ADDR\`"
}
stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

# wrk_rps LOG ARGS...: runs wrk and prints its requests per second, failing on any error.
wrk_rps() {
    local log="$1"
    shift
    wrk "$@" >"$log"
    cat "$log" >&2
    if grep -qE 'Non-2xx|Socket errors' "$log"; then
        die "wrk saw errors (above)"
    fi
    awk '/^Requests\/sec:/ { print $2 }' "$log"
}

# A loadgen RESULT line's KEY value.
result_field() {
    tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"
}

# The median estimate of a criterion benchmark in ns (from its last run's estimates.json).
criterion_median() {
    local file="$criterion/$1/new/estimates.json"
    [ -f "$file" ] || die "no criterion estimate for $1 ($file)"
    tr -d ' \n' <"$file" | sed -n 's/.*"median":{"confidence_interval":{[^}]*},"point_estimate":\([0-9.e+-]*\).*/\1/p'
}

# ---------------------------------------------------------------- preparation

date_utc="$(date -u +%Y-%m-%d)"
say "bench.sh on $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), sections: $(for s in "${all_sections[@]}"; do wants "$s" && printf '%s ' "$s"; done)"

if wants floor || wants me; then
    if ! command -v wrk >/dev/null; then
        say "installing wrk (Debian package)"
        apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }
    fi
fi
if wants scale; then
    command -v pg_isready >/dev/null && { pg_isready -q -d "$database" || die "no PostgreSQL at $database (BENCH_DATABASE); leave out the scale section"; }
fi

say "release builds"
cargo build --release --locked -p holdfast-server-kit --bin holdfast-server -p holdfast-examples --bin loadgen --bin floor
declare -A bench_exe=()
if wants crypto || wants gate || wants client; then
    # Always the three together: another selection unifies other features and rebuilds.
    while read -r name exe; do
        bench_exe[$name]="$exe"
    done < <(cargo bench --locked -p holdfast-server-kit -p holdfast-core --bench crypto --bench gate \
        --bench session --no-run --message-format=json |
        grep '"kind":\["bench"\]' |
        sed -n 's/.*"target":{[^}]*"name":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1 \2/p')
    for name in crypto gate session; do
        [ -x "${bench_exe[$name]:-}" ] || die "cargo bench --no-run gave no executable for $name"
    done
fi
if wants python; then
    venv="$target_dir/py-venv"
    [ -x "$venv/bin/python" ] || die "no $venv: run bash bindings/python/run_tests.sh first"
    cargo rustc --locked --profile mobile -p holdfast-ffi --crate-type cdylib
    package="$("$venv/bin/python" -c 'import holdfast, os; print(os.path.dirname(holdfast.__file__))')"
    mkdir -p "$work/py"
    cp -r "$package" "$work/py/holdfast"
    # maturin puts the library beside the generated module, in holdfast/_native/.
    library="$(find "$work/py/holdfast" -maxdepth 2 -name '*holdfast_ffi*.so' | head -n 1)"
    [ -n "$library" ] || die "no libholdfast_ffi in $package"
    cp "$target_dir/mobile/libholdfast_ffi.so" "$library"
fi

# ---------------------------------------------------------------- one run of each

one_floor() {
    start_server "$work/floor" "$bin/floor" --listen "127.0.0.1:$port_floor"
    curl -sf -o /dev/null -w '%{size_download}' "$server_url/auth/me" >"$work/floor_bytes" ||
        die "the floor did not answer GET /auth/me"
    local rps
    rps="$(wrk_rps "$work/wrk-floor" "${wrk_args[@]}" "$server_url/auth/me")"
    echo "floor $rps"
    stop_server
}

one_me() {
    rm -rf "$work/me" && mkdir -p "$work/me"
    start_server "$work/me/server" env RUST_LOG=warn "$bin/holdfast-server" --listen "127.0.0.1:$port_server" \
        --database "sqlite:$work/me/db" --rate-limit off --ip-block off
    local answer token
    answer="$(curl -sf -X POST -H 'content-type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$server_url/auth/signup")" ||
        die "sign-up failed"
    token="$(sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p' <<<"$answer")"
    [ -n "$token" ] || die "no access token in the sign-up answer: $answer"
    curl -sf -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $token" "$server_url/auth/me" \
        >"$work/me_bytes" || die "GET /auth/me failed"
    local rps
    rps="$(wrk_rps "$work/wrk-me" "${wrk_args[@]}" -H "Authorization: Bearer $token" "$server_url/auth/me")"
    echo "me $rps"
    stop_server
}

# loadgen_run SCENARIOS ARGS...: prints `SCENARIO RPS` for each RESULT line.
loadgen_run() {
    local log="$work/loadgen.log" line scenario
    "$bin/loadgen" --spawn "$bin/holdfast-server" "$@" >"$log" 2>&1 || {
        cat "$log" >&2
        die "loadgen failed (above)"
    }
    grep -v '^RESULT' "$log" >&2 || true
    while read -r line; do
        [ "$(result_field "$line" errors)" = 0 ] || die "loadgen reported errors: $line"
        scenario="$(result_field "$line" scenario)"
        echo "$scenario $(result_field "$line" rps)"
        # The server's CPU per request (µs), from its /proc stat over the measured phase.
        echo "${scenario}_cpu $(awk -v s="$(result_field "$line" server_cpu_s)" \
            -v n="$(result_field "$line" requests)" 'BEGIN { printf "%.1f", s * 1e6 / n }')"
    done < <(grep '^RESULT scenario=' "$log")
}

# Concurrency 8 (as the issue measured it) is bound by latency: each client waits for its
# rotation's commit, so at most 8 rotations share an fsync. Concurrency 64 lets groups grow
# until the CPU bounds them.
one_refresh() {
    loadgen_run --scenario refresh --requests 20000 --concurrency 8 | grep -v '_cpu '
    loadgen_run --scenario refresh --requests 30000 --concurrency 64 | sed 's/^refresh/refresh64/'
}

one_scale() {
    loadgen_run --instances 2 --database "$database" --redis "$redis" --scenario me,refresh \
        --requests 20000 --concurrency 32 | grep -v '_cpu ' | sed 's/^/scale_/'
}

crypto_benches=(hs256/verify_access_token hs256/sign_access_token hs256/hmac_sha256_only
    p256_p1363_verify/ring p256_p1363_verify/p256_crate passwords/pbkdf2_sha512_600k_ring
    passwords/sha512_1_2m_blocks_ring passwords/argon2id_default_hash)
gate_benches=(gate/admit_warm_unbound gate/admit_warm_with_proof)
client_benches=(access_token/fresh access_token/fresh_poll_once cold_start/provided_key
    cold_start_parts/client_new cold_start_parts/initialize)

# criterion_run DIR BENCH FILTER NAMES...: runs the bench executable built above in the
# package folder DIR, as `cargo bench` would (without cargo, which could rebuild meanwhile);
# prints `NAME NS` for each named benchmark.
criterion_run() {
    local dir="$1" bench="$2" filter="$3" name
    shift 3
    for name in "$@"; do
        rm -rf "${criterion:?}/${name%%/*}"
    done
    (cd "$root/$dir" && CRITERION_HOME="$criterion" "${bench_exe[$bench]}" --bench --warm-up-time 1 \
        --measurement-time 3 ${filter:+"$filter"}) >"$work/criterion.log" 2>&1 || {
        cat "$work/criterion.log" >&2
        die "the $bench bench failed (above)"
    }
    grep -E '^[a-z0-9_]+/|time:' "$work/criterion.log" >&2 || true
    local ns
    for name in "$@"; do
        ns="$(criterion_median "$name")"
        echo "$name $ns"
    done
}

one_crypto() { criterion_run server-kit crypto "" "${crypto_benches[@]}"; }
one_gate() { criterion_run server-kit gate "" "${gate_benches[@]}"; }
one_client() {
    criterion_run core session 'access_token/|cold_start/provided_key|cold_start_parts/(client_new|initialize)$' \
        "${client_benches[@]}"
}

one_python() {
    local out
    out="$(PYTHONPATH="$work/py" HOLDFAST_SERVER_BIN="$bin/holdfast-server" \
        "$target_dir/py-venv/bin/python" bindings/python/bench_access_token.py)"
    echo "$out" >&2
    echo "python_access_token $(sed -n 's/.*median of [0-9]* rounds \([0-9.]*\) us per call.*/\1/p' <<<"$out")"
}

one_kotlin() {
    local out
    out="$(bash bindings/kotlin/bench.sh 2>&1)" || {
        echo "$out" >&2
        die "bindings/kotlin/bench.sh failed"
    }
    echo "$out" | tail -n 9 >&2
    echo "kotlin_access_token $(sed -n 's/.*median of [0-9]* rounds \([0-9.]*\) us per call.*/\1/p' <<<"$out")"
}

# ---------------------------------------------------------------- figures

wrk_cmd="wrk ${wrk_args[*]}"
bench_cmd="-- --warm-up-time 1 --measurement-time 3"
if wants floor; then
    figure floor "floor: bare axum, constant /auth/me-sized body" rps "—" \
        "\`target/release/floor\`; \`$wrk_cmd http://ADDR/auth/me\`"
fi
if wants me; then
    figure me "\`GET /auth/me\`, SQLite, wrk" rps "≥ 100,000 req/s" \
        "\`holdfast-server --database sqlite:… --rate-limit off --ip-block off\`, one sign-up; \`$wrk_cmd -H 'Authorization: Bearer …' http://ADDR/auth/me\`"
fi
if wants refresh; then
    figure refresh "refresh, SQLite (durable), loadgen, concurrency 8" rps "≥ 35,000 req/s" \
        "\`target/release/loadgen --spawn target/release/holdfast-server --scenario refresh --requests 20000 --concurrency 8\`"
    refresh64_cmd="\`target/release/loadgen --spawn target/release/holdfast-server --scenario refresh --requests 30000 --concurrency 64\`"
    figure refresh64 "refresh, SQLite (durable), loadgen, concurrency 64" rps "≥ 35,000 req/s" "$refresh64_cmd"
    figure refresh64_cpu "refresh at concurrency 64: server CPU per refresh" us "—" "$refresh64_cmd (\`server_cpu_s\` ÷ requests)"
fi
if wants scale; then
    scale_cmd="\`target/release/loadgen --spawn target/release/holdfast-server --instances 2 --database $database --redis $redis --scenario me,refresh --requests 20000 --concurrency 32\`"
    figure scale_me "two instances, PostgreSQL + Redis: \`/auth/me\`" rps "≥ 25,000 req/s" "$scale_cmd"
    figure scale_refresh "two instances, PostgreSQL + Redis: refresh" rps "≥ 8,000 req/s" "$scale_cmd"
fi
crypto_target() {
    case "$1" in
        hs256/verify_access_token) echo "≤ 1.2 µs" ;;
        p256_p1363_verify/ring) echo "≤ 45 µs" ;;
        gate/admit_warm_unbound) echo "≥ 1.5 M/s per core (≤ 667 ns)" ;;
        access_token/*) echo "< 1 µs (Rust)" ;;
        cold_start/provided_key) echo "< 1 ms" ;;
    esac
}
if wants crypto; then
    for name in "${crypto_benches[@]}"; do
        figure "$name" "\`$name\`" ns "$(crypto_target "$name")" \
            "\`cargo bench -p holdfast-server-kit --bench crypto $bench_cmd\`"
    done
fi
if wants gate; then
    for name in "${gate_benches[@]}"; do
        figure "$name" "\`$name\`" ns "$(crypto_target "$name")" \
            "\`cargo bench -p holdfast-server-kit --bench gate $bench_cmd\`"
    done
fi
if wants client; then
    for name in "${client_benches[@]}"; do
        figure "$name" "\`$name\`" ns "$(crypto_target "$name")" \
            "\`cargo bench -p holdfast-core --bench session $bench_cmd 'access_token/|cold_start/provided_key|cold_start_parts/(client_new|initialize)\$'\`"
    done
fi
if wants python; then
    figure python_access_token "\`access_token()\` from Python (mobile profile)" us "< 30 µs" \
        "\`scripts/bench.sh python\` (bindings/python/bench_access_token.py, the mobile-profile library over the wheel's)"
fi
if wants kotlin; then
    figure kotlin_access_token "\`accessToken()\` from Kotlin (mobile profile)" us "< 30 µs" \
        "\`bash bindings/kotlin/bench.sh\`"
fi

# ---------------------------------------------------------------- the table

# Prints the table of what was measured (marked incomplete when refusing).
print_table() {

    echo
    echo "### bench.sh, $date_utc, $(nproc) CPUs, median of $runs runs"
    if [ -n "$incomplete" ]; then
        echo
        echo "**INCOMPLETE: $incomplete. Runs measured before that are listed; not a median of $runs.**"
    fi
    if [ "$unguarded" = 1 ]; then
        echo
        echo "**BENCH_UNGUARDED=1: measured without the quiet-machine checks; not figures to report.**"
    fi
    echo
    echo "| figure | median | runs | target | command |"
    echo "|---|---|---|---|---|"
    for key in "${order[@]}"; do
        read -r -a list <<<"${values[$key]}"
        [ "${#list[@]}" -gt 0 ] || continue
        mid="$(median "${list[@]}")"
        shown=()
        for v in "${list[@]}"; do shown+=("$(format "${units[$key]}" "$v")"); done
        printf '| %s | **%s** | %s | %s | %s |\n' "${labels[$key]}" "$(format "${units[$key]}" "$mid")" \
            "$(join "${shown[@]}")" "${targets[$key]:-}" "${commands[$key]}"
        if [ "$key" = me ] && [ -n "${values[floor]:-}" ]; then
            read -r -a floors <<<"${values[floor]}"
            ratios=()
            for ((i = 0; i < ${#list[@]} && i < ${#floors[@]}; i++)); do
                ratios+=("$(awk -v f="${floors[$i]}" -v m="${list[$i]}" 'BEGIN { printf "%.2f×", f / m }')")
            done
            # shellcheck disable=SC2016 # the backquotes are markdown
            printf '| `/auth/me` ratio: floor ÷ `/auth/me` | **%s** | %s | ≤ 1.3× | the two rows above, run by run |\n' \
                "$(awk -v f="$(median "${floors[@]}")" -v m="$mid" 'BEGIN { printf "%.2f×", f / m }')" \
                "$(join "${ratios[@]}")"
        fi
    done
    if [ -s "$work/floor_bytes" ] || [ -s "$work/me_bytes" ]; then
        echo
        echo "Body bytes: floor $(cat "$work/floor_bytes" 2>/dev/null || echo -), \`/auth/me\` $(cat "$work/me_bytes" 2>/dev/null || echo -)."
        if [ -s "$work/floor_bytes" ] && [ -s "$work/me_bytes" ] && [ "$(cat "$work/floor_bytes")" != "$(cat "$work/me_bytes")" ]; then
            echo "WARNING: the floor's body is not as long as /auth/me's: give floor --body-bytes $(cat "$work/me_bytes")."
        fi
    fi
}

# ---------------------------------------------------------------- measuring

for ((run = 1; run <= runs; run++)); do
    for section in floor me refresh scale crypto gate client python kotlin; do
        wants "$section" || continue
        say "$section: run $run of $runs"
        guarded "one_$section"
    done
done


print_table
