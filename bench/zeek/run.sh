#!/usr/bin/env bash
# Benchmark: zeek.Source ingesting a ≥ 1 GB conn.log, TSV and JSON, next to
# `wc -l` (the floor: reading the bytes and finding lines) and `jq -c .`
# (a JSON parser that prints every record) over the same files, in one
# run. Prints records/s, records per CPU-second (the per-core rate: the
# source decodes in one goroutine) and the ratios.
# Usage: bench/zeek/run.sh [MB per file, default 1024] [runs, default 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
mb=${1:-1024}
runs=${2:-3}
for t in hyperfine jq; do command -v $t >/dev/null || { echo "$t not installed"; exit 2; }; done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
go build -o "$work/gen" ./bench/zeek/gen
go build -o "$work/count" ./bench/zeek/count
mkdir -p "$work/tsv" "$work/json"
n_tsv=$("$work/gen" -format tsv -size $((mb << 20)) -o "$work/tsv/conn.log")
n_json=$("$work/gen" -format json -size $((mb << 20)) -o "$work/json/conn.log")
ls -l "$work/tsv/conn.log" "$work/json/conn.log" | awk '{printf "%s: %.0f MB\n", $NF, $5/1048576}'
echo "records: TSV $n_tsv, JSON $n_json"
cat "$work/tsv/conn.log" "$work/json/conn.log" >/dev/null # warm the page cache for everyone alike

# Per-core rate and peak memory: CPU seconds (user+sys) from /usr/bin/time.
for f in tsv json; do
  /usr/bin/time -f "%e %U %S %M" -o "$work/time.$f" "$work/count" "$work/$f/conn.log" 2>"$work/err.$f" >/dev/null ||
    { cat "$work/err.$f"; exit 1; }
done

hyperfine --runs "$runs" --style basic --export-json "$work/h.json" \
  -n "cargowatch tsv" "$work/count $work/tsv/conn.log" \
  -n "wc -l tsv" "wc -l $work/tsv/conn.log" \
  -n "cargowatch json" "$work/count $work/json/conn.log" \
  -n "wc -l json" "wc -l $work/json/conn.log" \
  -n "jq -c . json" "jq -c . $work/json/conn.log >/dev/null"

echo
jq -r --argjson nt "$n_tsv" --argjson nj "$n_json" '
  [.results[] | {key: .command, value: .median}] | from_entries as $t |
  "median wall seconds:",
  ($t | to_entries[] | "  \(.key): \(.value * 1000 | round / 1000) s"),
  "",
  "cargowatch TSV:  \($nt / $t["cargowatch tsv"] | round) records/s wall",
  "cargowatch JSON: \($nj / $t["cargowatch json"] | round) records/s wall",
  "jq JSON:         \($nj / $t["jq -c . json"] | round) records/s wall",
  "ratios: cargowatch/wc -l TSV \($t["cargowatch tsv"] / $t["wc -l tsv"] * 100 | round / 100)x, cargowatch/wc -l JSON \($t["cargowatch json"] / $t["wc -l json"] * 100 | round / 100)x, jq/cargowatch JSON \($t["jq -c . json"] / $t["cargowatch json"] * 100 | round / 100)x faster"
' "$work/h.json"
for f in tsv json; do
  n=$n_tsv; [[ $f == json ]] && n=$n_json
  read -r wall user sys kb <"$work/time.$f"
  awk -v f="$f" -v n="$n" -v w="$wall" -v u="$user" -v s="$sys" -v kb="$kb" 'BEGIN {
    printf "%s: %.0f records per CPU-second (user %.2f s + sys %.2f s, wall %.2f s), peak RSS %.0f MB\n", f, n/(u+s), u, s, w, kb/1024 }'
done
echo "target: TSV >= 1,000,000 records/s per core"
