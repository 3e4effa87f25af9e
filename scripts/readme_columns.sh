#!/bin/sh
# readme_columns.sh -- rewrite the README's CSV column tables from the
# server's column tables: the lines between "<!-- FILE columns -->" and
# the next "<!-- end -->" become `cowlab --print-columns FILE`.
# tests/check_measure.c fails while the README differs from the tables.
# Usage: scripts/readme_columns.sh [BIN [README]]
#        (defaults: bin/cowlab, README.md; `make readme-columns`)
set -eu
bin=${1:-bin/cowlab}
readme=${2:-README.md}
if [ ! -x "$bin" ]; then
    echo "readme_columns: $bin is missing: run make first" >&2
    exit 1
fi
tmp=$(mktemp "$readme.XXXXXX")
trap 'rm -f "$tmp" "$tmp.t" "$tmp.t2"' EXIT
cp "$readme" "$tmp"
for f in samples runs types totals diffs routes kinds; do
    if ! grep -qx "<!-- $f.csv columns -->" "$tmp"; then
        echo "readme_columns: $readme has no '<!-- $f.csv columns -->'" >&2
        exit 1
    fi
    "$bin" --print-columns "$f" > "$tmp.t"
    awk -v start="<!-- $f.csv columns -->" -v table="$tmp.t" '
        $0 == start { print; while ((getline l < table) > 0) print l;
                      skip = 1; next }
        skip && $0 == "<!-- end -->" { skip = 0 }
        !skip { print }
    ' "$tmp" > "$tmp.t2"
    mv "$tmp.t2" "$tmp"
done
if cmp -s "$tmp" "$readme"; then
    echo "readme_columns: $readme is up to date"
else
    cat "$tmp" > "$readme"
    echo "readme_columns: $readme rewritten"
fi
