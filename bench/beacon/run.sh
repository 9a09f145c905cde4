#!/usr/bin/env bash
# Benchmark of the behavioural detectors (beacon, strobe, long connection,
# DNS tunnel, exfiltration, prevalence, then the combination): feeds 1 M,
# 3 M and 10 M synthetic Conn records over 50,000 pairs straight into them
# (no capture decoding) under /usr/bin/time -v and prints records, seconds,
# peak RSS and records/s. Targets: 10 M under 30 s and 2 GB, memory growing
# no worse than linearly. Usage: bench/beacon/run.sh [pairs]
set -euo pipefail
cd "$(dirname "$0")/../.."
pairs=${1:-50000}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
go build -o "$work/beacon" ./bench/beacon
# cpu_s (user + system) is the fair figure on a shared machine: wall
# seconds stretch with whatever else runs.
printf "%-10s %8s %9s %7s %12s %12s %8s %8s %8s\n" records pairs seconds cpu_s peak_rss_mb records_per_s beacons strobes longconn
for n in 1000000 3000000 10000000; do
  /usr/bin/time -v "$work/beacon" -records $n -pairs "$pairs" >"$work/out" 2>"$work/time"
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2/1024}' "$work/time")
  cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$work/time")
  read -r _ rec _ pr _ be _ st _ lc _ _ _ _ _ _ _ _ <"$work/out"
  awk -v r="$rec" -v p="$pr" -v s="$secs" -v c="$cpu" -v m="$rss" -v b="$be" -v st="$st" -v l="$lc" \
    'BEGIN { printf "%-10d %8d %9.2f %7.2f %12.0f %12.0f %8d %8d %8d\n", r, p, s, c, m, r/s, b, st, l }'
done
