#!/usr/bin/env bash
# Benchmark: cargowatch analyze next to argus (flow records only) and
# tshark's TCP conversation table on the same ≥150 MB capture, in one run,
# printing wall-time ratios and peak memory. Usage: bench/analyze.sh [MB]
set -euo pipefail
cd "$(dirname "$0")/.."
want_mb=${1:-150}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for t in argus tshark; do command -v $t >/dev/null || { echo "$t not installed (apt-get install argus-server tshark)"; exit 2; }; done
go build -o "$work/cw" ./cmd/cargowatch
go build -o "$work/hubgen" ./bench/hubgen

# Grow the simulator's scale until the capture is big enough.
scale=8
while :; do
  cap=$("$work/hubgen" -dir "$work/hub" -scale $scale)
  mb=$(( $(stat -c %s "$cap") / 1048576 ))
  [[ $mb -ge $want_mb ]] && break
  scale=$(( scale * 2 ))
done
echo "capture: $cap, $mb MB (simulator scale $scale)"
cat "$cap" >/dev/null # warm the page cache for everyone alike

measure() { # name cmd...: prints "name seconds maxrss_kb"
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || { echo "$name failed: $(tail -3 "$work/err")"; return 1; }
  read -r secs kb <"$work/t"; echo "$name $secs $kb"
}
{
  measure cargowatch "$work/cw" analyze --no-db -q --format jsonl "$cap"
  measure argus argus -r "$cap" -w "$work/argus.out"
  measure tshark tshark -r "$cap" -q -z conv,tcp
} | tee "$work/results"
awk -v mb="$mb" '
  { t[$1]=$2; m[$1]=$3 }
  END {
    printf "\n%-12s %9s %9s %10s %12s\n", "tool", "seconds", "MB/s", "peak MB", "vs cargowatch"
    for (n in t) printf "%-12s %9.2f %9.1f %10.1f %11.2fx\n", n, t[n], mb/t[n], m[n]/1024, t[n]/t["cargowatch"]
    printf "\ntargets: cargowatch no slower than argus (ratio argus/cargowatch >= 1: %.2f), peak memory < 300 MB (%.1f MB)\n", t["argus"]/t["cargowatch"], m["cargowatch"]/1024
  }' "$work/results"
