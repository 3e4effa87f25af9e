#!/usr/bin/env bash
# run.sh -- build and run cowlab's libFuzzer targets (tests/fuzz/fuzz_*.c).
#
#   tests/fuzz/run.sh [SECONDS]   build, then run every target SECONDS
#                                 (default 60) one after the other; print
#                                 per target the executions, exec/s and
#                                 whether it found anything
#   tests/fuzz/run.sh --replay    build each target with a plain main()
#                                 (replay_main.c) under ASan+UBSan, without
#                                 libFuzzer, and run it once over its seed
#                                 corpus and its regression inputs
#   tests/fuzz/run.sh --build     only build
#
# Environment: FUZZ_TARGETS="http config" (default: every fuzz_*.c),
# CLANG (default clang), FUZZ_BUILD (default build/fuzz), FUZZ_FLAGS (more
# libFuzzer flags, e.g. "-jobs=2 -workers=2").
#
# Layout:
#   tests/fuzz/corpus/<target>/       seeds (checked in; read only here)
#   tests/fuzz/regressions/<target>/  crashers, kept as regression inputs:
#                                     libFuzzer writes crash-*, leak-*,
#                                     timeout-*, oom-* files here
#   tests/fuzz/dict/<target>.dict     libFuzzer dictionaries
#   $FUZZ_BUILD/corpus/<target>/      what the fuzzer found (not checked in;
#                                     kept between runs, so runs add up)
#
# The build compiles the sources of every layer (runtime, common,
# workloads, measure, server) with
# -fsanitize=fuzzer-no-link,address,undefined, -DRT_DEBUG (assertions) and
# -DRT_MALLOC_BYPASS (objects from malloc, so ASan sees each block), as the
# asan target does.  Exit status: 0 if nothing was found, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODE=run
SECONDS_PER_TARGET=60
case "${1:-}" in
    --replay) MODE=replay ;;
    --build) MODE=build ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    "") ;;
    *) [[ "$1" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS|--replay|--build]" >&2; exit 2; }
       SECONDS_PER_TARGET=$1 ;;
esac

CLANG=${CLANG:-clang}
B=${FUZZ_BUILD:-build/fuzz}
TARGETS=${FUZZ_TARGETS:-$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||' | tr '\n' ' ')}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
PKG_CFLAGS=$(pkg-config --cflags libuv jansson)
LIBS="$(pkg-config --libs libuv jansson) -lhttp_parser -lm"
SRC_DIRS="runtime common workloads measure server"
CPPFLAGS="-D_GNU_SOURCE -Iruntime -Icommon -Iworkloads -Imeasure -Iserver -I$B/gen -DRT_BUILD_CORE"
CPPFLAGS="$CPPFLAGS -DRT_DEBUG -DRT_MALLOC_BYPASS"
# The project's warnings, without -Werror: a warning clang has and gcc
# lacks must not stop a fuzzing run.
WARN="-Wall -Wextra -Wshadow -Wundef -Wwrite-strings -Wstrict-prototypes -Wmissing-prototypes"
CFLAGS="-std=c11 -O1 -g $WARN $SAN $PKG_CFLAGS"

# Shorter allocation stacks: faster mallocs, and reports keep 8 frames.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=8}

command -v "$CLANG" >/dev/null || { echo "fuzz: $CLANG not found" >&2; exit 2; }

# Library: every source but main.c, instrumented for coverage.
build_lib() {
    local lib=$B/libcowlab_fuzz.a objs=() src obj
    mkdir -p "$B/obj" "$B/gen"
    scripts/embed_workloads.sh "$B/gen/wl_embedded.h" workloads/*.json
    for src in $(for d in $SRC_DIRS; do echo $d/*.c; done); do
        [ "$src" = server/main.c ] && continue
        obj=$B/obj/${src//\//_}.o
        if [ ! -e "$obj" ] || [ "$src" -nt "$obj" ] \
           || [ -n "$(find $SRC_DIRS "$B/gen" -name '*.h' -newer "$obj" -print -quit)" ]; then
            $CLANG $CPPFLAGS $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
        fi
        objs+=("$obj")
    done
    rm -f "$lib"
    ar rcs "$lib" "${objs[@]}"
}

build_targets() {
    local t
    build_lib
    for t in $TARGETS; do
        $CLANG $CPPFLAGS $CFLAGS -fsanitize=fuzzer "tests/fuzz/fuzz_$t.c" \
            "$B/libcowlab_fuzz.a" $LIBS -o "$B/fuzz_$t"
    done
}

build_replay() {
    local t
    build_lib
    for t in $TARGETS; do
        $CLANG $CPPFLAGS $CFLAGS "tests/fuzz/fuzz_$t.c" tests/fuzz/replay_main.c \
            "$B/libcowlab_fuzz.a" $LIBS -o "$B/replay_$t"
    done
}

max_len() {
    case "$1" in
        http) echo 16384 ;;
        workload) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

if [ "$MODE" = build ]; then
    build_targets
    echo "fuzz: built $(for t in $TARGETS; do printf '%s ' "$B/fuzz_$t"; done)"
    exit 0
fi

if [ "$MODE" = replay ]; then
    build_replay
    rc=0
    for t in $TARGETS; do
        if ! ASAN_OPTIONS=detect_leaks=1 "$B/replay_$t" "tests/fuzz/corpus/$t" \
                "tests/fuzz/regressions/$t"; then
            echo "fuzz_$t: REPLAY FAILED" >&2
            rc=1
        fi
    done
    exit $rc
fi

build_targets
found=0
summary=()
for t in $TARGETS; do
    mkdir -p "$B/corpus/$t" "tests/fuzz/regressions/$t"
    log=$B/fuzz_$t.log
    dict=()
    [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
    before=$(ls "tests/fuzz/regressions/$t" | wc -l)
    echo "fuzz: fuzz_$t for ${SECONDS_PER_TARGET}s (log: $log)"
    set +e
    # shellcheck disable=SC2086
    nice -n "${FUZZ_NICE:-10}" "$B/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
        -rss_limit_mb=2048 -max_len="$(max_len "$t")" -print_final_stats=1 \
        -artifact_prefix="tests/fuzz/regressions/$t/" "${dict[@]}" \
        ${FUZZ_FLAGS:-} "$B/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
    status=$?
    set -e
    after=$(ls "tests/fuzz/regressions/$t" | wc -l)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ -z "$execs" ]; then        # a crash ends without final stats
        execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
        rate="?"
    fi
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | sed 's/cov: //')
    corpus=$(ls "$B/corpus/$t" | wc -l)
    if [ "$status" -eq 0 ] && [ "$after" -eq "$before" ]; then
        result="nothing found"
    else
        found=1
        result="FOUND: $(grep -E 'ERROR: |SUMMARY: |fuzz_[a-z]+: ' "$log" | head -2 | tr '\n' ' ')"
        result="$result; saved: $(ls -t "tests/fuzz/regressions/$t" | head -1)"
    fi
    line=$(printf 'fuzz_%-9s %12s execs %8s exec/s  cov %-5s corpus %-5s %s' \
           "$t" "${execs:-0}" "${rate:-?}" "${cov:-?}" "$corpus" "$result")
    echo "$line"
    summary+=("$line")
done
echo "---"
printf '%s\n' "${summary[@]}"
exit $found
