#!/bin/sh
# bench/run.sh BUILD_DIR -- run the benchmarks of an existing build and print
# one summary table (Markdown) of the figures against their references.
#
# Owns: the order and arguments of the benchmark runs and the summary table.
# Must never: build anything (make bench builds first), pass or fail on a
# figure -- it exits non-zero only when a program is missing, crashes, or
# reports that a parser extracted wrong values (bench_parse exits 1).
#
# Runs:  BUILD_DIR/bench/bench_parse -n 1000000
#        BUILD_DIR/bench/bench_engine --quality 0
#        BUILD_DIR/bench/bench_engine --quality 1
#        BUILD_DIR/bench/bench_ingest   (Kafka mock in-process; MQTT if mosquitto is installed)
# Their full output is shown as they run; the table comes last.  A candidate
# or figure that is absent (e.g. cJSON not installed) shows as n/a.
#
# References: 5 M lines/s parse, 3 M events/s parse + rules on one core,
# 256 bytes per series (a ceiling: a ratio below 1 is better there); for
# ingest, a bare librdkafka consumer / Paho subscriber on the same messages.
set -u
LC_ALL=C
export LC_ALL

PARSE_TARGET=5     # M lines/s
RULES_TARGET=3     # M events/s
SERIES_BYTES=256   # bytes/series, ceiling

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: sh bench/run.sh BUILD_DIR" >&2
    exit 2
fi
build=$1
if [ ! -d "$build" ]; then
    echo "run.sh: no build directory '$build' (build first, e.g. make bench)" >&2
    exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigil-run.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

status=0

# run NAME PROGRAM ARGS...: show the output as it comes, keep stdout in
# $tmp/NAME.out and the exit status in $tmp/NAME.rc.
run() {
    name=$1
    shift
    : >"$tmp/$name.out"
    echo 127 >"$tmp/$name.rc"
    if [ ! -x "$1" ]; then
        echo "run.sh: $1 is missing; its figures are n/a" >&2
        status=1
        return
    fi
    echo "==> $*"
    { "$@"; echo $? >"$tmp/$name.rc"; } | tee "$tmp/$name.out"
    rc=$(cat "$tmp/$name.rc")
    if [ "$rc" -ne 0 ]; then
        echo "run.sh: $* exited with status $rc" >&2
        status=1
    fi
    echo
}

run parse "$build/bench/bench_parse" -n 1000000
run q0 "$build/bench/bench_engine" --quality 0
run q1 "$build/bench/bench_engine" --quality 1
run ingest "$build/bench/bench_ingest"

# bench_parse: "M lines/s" of one candidate from the results table, or n/a;
# MISMATCH when that candidate extracted wrong values.
parse_rate() {
    awk -v want="$1" '
        $1 == "parser" && $2 == "M" { t = 1; next }
        t && NF == 0 { t = 0 }
        t && $1 == want { v = ($NF == "MISMATCH") ? "MISMATCH" : $2 }
        END { print (v == "" ? "n/a" : v) }' "$tmp/parse.out"
}

# bench_parse: average valid line length in bytes.
parse_avg_len() {
    awk '/valid line length min\/avg\/max:/ {
            for (i = 1; i <= NF; i++) if ($i == "min/avg/max:") { split($(i + 1), a, "/"); v = a[2] }
         }
         END { print (v == "" ? "?" : sprintf("%.0f", v)) }' "$tmp/parse.out"
}

# bench_engine: the number before "M" on the line starting with PREFIX.
engine_rate() {
    awk -v pre="$2" '
        index($0, pre) == 1 { for (i = 2; i <= NF; i++) if ($i == "M") { v = $(i - 1); break } }
        END { print (v == "" ? "n/a" : v) }' "$tmp/$1.out"
}

# bench_engine: "= N bytes/series" (shard tables) or "RSS growth N bytes/series".
engine_bytes() {
    awk -v which="$2" '
        /^series:/ {
            s = $0
            if (which == "rss") { if (match(s, /RSS growth [0-9.]+ bytes\/series/)) { s = substr(s, RSTART + 11, RLENGTH - 11) } else s = "" }
            else { if (match(s, /= [0-9.]+ bytes\/series/)) { s = substr(s, RSTART + 2, RLENGTH - 2) } else s = "" }
            split(s, a, " "); v = a[1]
        }
        END { print (v == "" ? "n/a" : v) }' "$tmp/$1.out"
}

# bench_engine: average line length.
engine_avg_len() {
    awk '/^workload:/ { if (match($0, /\([0-9.]+ bytes\/line\)/)) { split(substr($0, RSTART + 1), a, " "); v = a[1] } }
         END { print (v == "" ? "?" : v) }' "$tmp/$1.out"
}

# row FIGURE VALUE REFERENCE REFERENCE-LABEL
row() {
    awk -v f="$1" -v v="$2" -v r="$3" -v l="$4" 'BEGIN {
        num = "^[0-9]+([.][0-9]+)?$"
        ratio = (v ~ num && r ~ num && r + 0 > 0) ? sprintf("%.2f", v / r) : "n/a"
        ref = (r == "" ? "n/a" : r) " " l
        if (l == "") ref = "-"
        if (l == "") ratio = "-"
        printf "| %-50s | %9s | %-24s | %5s |\n", f, v, ref, ratio
    }'
}

plen=$(parse_avg_len)
vigil=$(parse_rate vigil)
q0len=$(engine_avg_len q0)
q1len=$(engine_avg_len q1)

echo "Summary ($build; ratio = value / reference)"
echo
printf "| %-50s | %9s | %-24s | %5s |\n" figure value reference ratio
printf "|%s|%s|%s|%s|\n" "$(printf '%52s' '' | tr ' ' -)" "----------:" "$(printf '%26s' '' | tr ' ' -)" "------:"
row "parse, vg_json_parse, ${plen} B lines (M lines/s)" "$vigil" "$PARSE_TARGET" "(target)"
for c in cjson jsmn simdjson-od; do
    row "  vigil vs $c, same run and corpus" "$vigil" "$(parse_rate "$c")" "($c)"
done
row "parse only, bench_engine q0, ${q0len} B (M lines/s)" "$(engine_rate q0 'parse only')" "$PARSE_TARGET" "(target)"
row "parse only, bench_engine q1, ${q1len} B (M lines/s)" "$(engine_rate q1 'parse only')" "$PARSE_TARGET" "(target)"
row "parse + rules, 1 worker, q0 (M events/s)" "$(engine_rate q0 'parse + rules')" "$RULES_TARGET" "(target)"
row "parse + rules, 1 worker, q1 (M events/s)" "$(engine_rate q1 'parse + rules')" "$RULES_TARGET" "(target)"
row "shard tables, q0 (bytes/series)" "$(engine_bytes q0 tables)" "$SERIES_BYTES" "(ceiling)"
row "RSS growth, q0 (bytes/series)" "$(engine_bytes q0 rss)" "$SERIES_BYTES" "(ceiling)"
row "shard tables, q1 (bytes/series)" "$(engine_bytes q1 tables)" "$SERIES_BYTES" "(ceiling)"
row "RSS growth, q1 (bytes/series)" "$(engine_bytes q1 rss)" "$SERIES_BYTES" "(ceiling)"
row "pipeline, reader + 1 worker, q0 (M events/s)" "$(engine_rate q0 'pipeline, reader + 1')" "" ""
row "pipeline, reader + 2 workers, q0 (M events/s)" "$(engine_rate q0 'pipeline, reader + 2')" "" ""
row "pipeline, reader + 1 worker, q1 (M events/s)" "$(engine_rate q1 'pipeline, reader + 1')" "" ""
row "pipeline, reader + 2 workers, q1 (M events/s)" "$(engine_rate q1 'pipeline, reader + 2')" "" ""
kbare=$(engine_rate ingest 'kafka, bare')
row "ingest, Kafka, vigil reader + 1 worker (M msgs/s)" "$(engine_rate ingest 'kafka, vigil reader + 1')" "$kbare" "(bare librdkafka)"
row "ingest, Kafka, vigil reader + 2 workers (M msgs/s)" "$(engine_rate ingest 'kafka, vigil reader + 2')" "$kbare" "(bare librdkafka)"
for m in "qos0 live" "qos1 live" "qos1 backlog"; do
    row "ingest, MQTT $m, vigil (M msgs/s)" "$(engine_rate ingest "mqtt $m, vigil")" \
        "$(engine_rate ingest "mqtt $m, bare")" "(bare Paho)"
done
echo
echo "q0: bench_engine --quality 0 (no optional fields); q1: with \"quality\":\"good\"."
echo "bytes/series is a ceiling (ratio < 1 meets it); the rates are floors (ratio >= 1 meets them)."
echo "ingest: ratio = vigil / a bare client on the same messages; MQTT live rates are bounded by the publisher."
if [ "$status" -ne 0 ]; then
    echo "!!! at least one benchmark is missing or failed -- see above" >&2
fi
exit "$status"
