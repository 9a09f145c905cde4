#!/usr/bin/env bash
# Throughput of `cargowatch scan` next to a plain Go regexp implementation
# of the same identifier patterns (bench/scan/regexpbaseline) and next to
# `grep -cE` with the ISO 6346 pattern, on one generated corpus in the same
# run: ordinary text and code (/usr/share/doc, the Go sources) with ~1 %
# embedded cargo messages, >= 100 MB, written to a temp dir and removed.
#
#   bench/scan/run.sh            # SIZE_MB=110 RUNS=3 by default; CARGOWATCH=bin to skip the build
#
# Each tool runs single-threaded (GOMAXPROCS=1; grep is single-threaded)
# after a warm-up read; the best of RUNS is kept. MB/s per core divides the
# bytes by user+system CPU seconds, MB/s wall by elapsed seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
size_mb=${SIZE_MB:-110}
runs=${RUNS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"

# CARGOWATCH=path uses a binary built elsewhere (e.g. while cmd/ is mid-edit).
if [[ -n ${CARGOWATCH:-} ]]; then cp "$CARGOWATCH" "$tmp/cargowatch"; else go build -o "$tmp/cargowatch" ./cmd/cargowatch; fi
go build -o "$tmp/regexpbaseline" ./bench/scan/regexpbaseline
go build -o "$tmp/gencorpus" ./bench/scan/gencorpus

srcs=()
for d in /usr/share/doc "$(go env GOROOT)/src"; do [[ -d $d ]] && srcs+=("$d"); done
mkdir "$tmp/corpus"
"$tmp/gencorpus" -out "$tmp/corpus" -size $((size_mb << 20)) "${srcs[@]}"
bytes=$(cat "$tmp/corpus"/* | wc -c)
cat "$tmp/corpus"/* >/dev/null

# best RUNS of: NAME COMMAND...; sets real, cpu (seconds) and leaves stdout in $tmp/out.
measure() {
  local best_real=999999 best_cpu=999999 r t
  for ((r = 0; r < runs; r++)); do
    TIMEFORMAT='%R %U %S'
    t=$( { time "$@" >"$tmp/out" 2>"$tmp/err"; } 2>&1 ) || { echo "failed: $* : $(tail -n 3 "$tmp/err")" >&2; exit 1; }
    read -r re us sy <<<"$t"
    best_real=$(awk -v a="$best_real" -v b="$re" 'BEGIN{print (b<a)?b:a}')
    best_cpu=$(awk -v a="$best_cpu" -v b="$us" -v c="$sy" 'BEGIN{s=b+c; print (s<a)?s:a}')
  done
  real=$best_real cpu=$best_cpu
}

row() { # name real cpu found
  awk -v n="$1" -v r="$2" -v c="$3" -v f="$4" -v b="$bytes" \
    'BEGIN{printf "%-22s %8.3f %8.3f %10.1f %12.1f   %s\n", n, r, c, b/1e6/r, b/1e6/(c>0?c:1e-9), f}'
}

export GOMAXPROCS=1
measure "$tmp/cargowatch" scan --format jsonl --no-messages "$tmp/corpus"
cw_real=$real cw_cpu=$cpu
cw_found="containers=$(grep -c '"type":"container"' "$tmp/out" || true) awbs=$(grep -c '"type":"awb"' "$tmp/out" || true) hits=$(wc -l <"$tmp/out")"

runs_all=$runs
runs=${RE_RUNS:-1} # the full regexp takes minutes: once is enough
measure "$tmp/regexpbaseline" "$tmp/corpus"
re_real=$real re_cpu=$cpu re_found=$(cat "$tmp/out")
runs=$runs_all
measure "$tmp/regexpbaseline" -container "$tmp/corpus"
rc_real=$real rc_cpu=$cpu rc_found=$(cat "$tmp/out")

measure env LC_ALL=C grep -rhcE '[A-Z]{3}[UJZ][0-9]{7}' "$tmp/corpus"
gr_real=$real gr_cpu=$cpu gr_found="lines=$(awk '{s+=$1} END{print s}' "$tmp/out")"

echo
echo "corpus: $bytes bytes ($(ls "$tmp/corpus" | wc -l) files), best of $runs runs (full regexp: ${RE_RUNS:-1}), GOMAXPROCS=1"
printf "%-22s %8s %8s %10s %12s   %s\n" tool real_s cpu_s MB/s_wall MB/s/core found
row "cargowatch scan" "$cw_real" "$cw_cpu" "$cw_found"
row "Go regexp, all ids" "$re_real" "$re_cpu" "$re_found"
row "Go regexp, ISO 6346" "$rc_real" "$rc_cpu" "$rc_found"
row "grep -cE (LC_ALL=C)" "$gr_real" "$gr_cpu" "$gr_found"
awk -v cr="$cw_real" -v cc="$cw_cpu" -v rr="$re_real" -v rc="$re_cpu" -v gr="$gr_real" -v gc="$gr_cpu" -v kc="$rc_cpu" -v b="$bytes" 'BEGIN{
  core = b/1e6/cc
  printf "cargowatch vs regexp (all ids): %.1fx wall, %.1fx cpu;  vs regexp (ISO 6346 only): %.1fx cpu;  vs grep: %.1fx wall, %.1fx cpu\n", rr/cr, rc/cc, kc/cc, gr/cr, gc/cc
  printf "targets: >= 300 MB/s per core: %s (%.0f);  >= 10x regexp: %s (%.1fx)\n", (core>=300)?"met":"NOT met", core, (rc/cc>=10)?"met":"NOT met", rc/cc
}'
