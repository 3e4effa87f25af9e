#!/usr/bin/env bash
# skips.sh -- skipped tests, made visible (the shell side of ts_skip() in
# tests/support.c).  A test that cannot run here is not a pass: it prints
# "SKIP <test>: <reason>" and the line goes to the file named by
# COWLAB_SKIPS, which make test empties first and reports at the end.
#
#   tests/skips.sh add NAME REASON...   print the line, append it to the file
#   tests/skips.sh report FILE          "N tests skipped" and the list; then
#                                       with COWLAB_REQUIRE_ALL=1, exit 1 if a
#                                       skip's line does not match the
#                                       extended regex COWLAB_ALLOW_SKIP (when
#                                       set), i.e. if any test that had to run
#                                       did not
set -u

case "${1:-}" in
add)
    [ $# -ge 3 ] || { echo "usage: $0 add NAME REASON..." >&2; exit 2; }
    name=$2
    shift 2
    line="SKIP $name: $*"
    echo "$line"
    if [ -n "${COWLAB_SKIPS:-}" ]; then
        echo "$line" >> "$COWLAB_SKIPS" \
            || echo "skips: cannot record the skip in $COWLAB_SKIPS" >&2
    fi
    ;;
report)
    [ $# -eq 2 ] || { echo "usage: $0 report FILE" >&2; exit 2; }
    file=$2
    n=0
    [ -f "$file" ] && n=$(grep -c '^SKIP ' "$file")
    if [ "$n" -eq 0 ]; then
        echo "0 tests skipped"
        exit 0
    fi
    [ "$n" -eq 1 ] && echo "1 test skipped:" || echo "$n tests skipped:"
    sed 's/^/  /' "$file"
    if [ "${COWLAB_REQUIRE_ALL:-0}" = 1 ]; then
        allow=${COWLAB_ALLOW_SKIP:-}
        if [ -n "$allow" ]; then
            bad=$(grep '^SKIP ' "$file" | grep -Ev -- "$allow")
        else
            bad=$(grep '^SKIP ' "$file")
        fi
        if [ -n "$bad" ]; then
            echo "COWLAB_REQUIRE_ALL=1: these tests had to run here:"
            echo "$bad" | sed 's/^/  /'
            [ -n "$allow" ] && echo "(allowed skips match: $allow)"
            exit 1
        fi
        echo "(every skip allowed: $allow)"
    fi
    ;;
*)
    echo "usage: $0 add NAME REASON... | report FILE" >&2
    exit 2
    ;;
esac
