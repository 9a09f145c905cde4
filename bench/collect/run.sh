#!/usr/bin/env bash
# Benchmark: the flow collector's sustained rate at zero loss on loopback,
# next to nfcapd's on the same feed, in one run.
#
# For each rate (flow records per second), bench/collect/feed sends a
# NetFlow v9 stream (30 records a datagram, the template every second)
# for SECONDS to, one after the other:
#   cw-db    cargowatch collect --db     (the service: decode, enrich, detect, store)
#   cw-nodb  cargowatch collect --no-db  (decode, enrich, detect)
#   nfcapd   nfcapd                      (decode, write its files)
# and counts the records each kept: the collector's status endpoint
# (records decoded, datagrams dropped at its queue; what the kernel
# dropped shows as records never received), nfdump over nfcapd's files.
# Both ask the kernel for the same 4 MiB socket buffer. The machine has
# two cores and the feed takes part of one: read ratios, not absolutes.
#
# Usage: bench/collect/run.sh [SECONDS] [RATE...]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-4}
shift || true
rates=("$@")
[[ ${#rates[@]} -gt 0 ]] || rates=(25000 50000 100000 200000 400000 800000)
for t in nfcapd nfdump curl jq; do
  command -v $t >/dev/null || { echo "$t not installed (apt-get install nfdump curl jq)"; exit 2; }
done
work=$(mktemp -d)
cleanup() { jobs -p | xargs -r kill 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/cw" ./cmd/cargowatch
go build -o "$work/feed" ./bench/collect/feed
if "$work/cw" collect -h >/dev/null 2>&1; then
  collect() { exec "$work/cw" collect "$@"; }
else
  # collect not wired into main.go yet: run it through the test binary's
  # helper process (cmd/cargowatch/collect_test.go, TestCollectChild).
  go test -c -o "$work/cwtest" ./cmd/cargowatch
  collect() {
    CARGOWATCH_COLLECT_CHILD=1 CARGOWATCH_COLLECT_ARGS="$(printf '%s\n' "$@" | jq -R . | jq -sc .)" \
      exec "$work/cwtest" -test.run='^TestCollectChild$'
  }
fi

cwport=39055 nfport=39056 status=127.0.0.1:39100
st() { curl -sf "http://$status/" || true; }

# run_cw NAME RATE ARGS...: prints "NAME RATE sent kept queue_dropped peak_rss_kb stop_ms"
run_cw() {
  local name=$1 rate=$2; shift 2
  collect --listen "udp://127.0.0.1:$cwport" --status "$status" --every 1h --local 10.0.0.0/8 -q "$@" \
    >"$work/out" 2>"$work/err" &
  local pid=$!
  for _ in $(seq 100); do [[ -n "$(st)" ]] && break; sleep 0.1; done
  [[ -n "$(st)" ]] || { echo "collect did not start: $(tail -3 "$work/err")" >&2; return 1; }
  local sent
  sent=$("$work/feed" -to "127.0.0.1:$cwport" -rate "$rate" -duration "${secs}s" | jq .records)
  # Wait until the collector has read, decoded and analysed all it kept.
  local prev="" cur
  for _ in $(seq 600); do
    cur=$(st | jq -c '[.netflow.received, .netflow.queued, .netflow.decoder.records, .conns]')
    [[ "$cur" == "$prev" ]] && [[ $(jq '.[1]' <<<"$cur") == 0 ]] && [[ $(jq '.[2] == .[3]' <<<"$cur") == true ]] && break
    prev=$cur
    sleep 0.5
  done
  local s kept dropped rss
  s=$(st)
  kept=$(jq .netflow.decoder.records <<<"$s")
  dropped=$(jq .netflow.queue_dropped <<<"$s")
  rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
  local t0 t1
  t0=$(date +%s%N)
  kill -INT $pid
  wait $pid || { echo "collect exited $?: $(tail -3 "$work/err")" >&2; return 1; }
  t1=$(date +%s%N)
  echo "$name $rate $sent $kept $dropped $rss $(( (t1 - t0) / 1000000 ))"
}

run_nfcapd() {
  local rate=$1 dir="$work/nf-$1"
  mkdir -p "$dir"
  nfcapd -b 127.0.0.1 -p $nfport -B 4194304 -w "$dir" >"$work/nf.log" 2>&1 &
  local pid=$!
  sleep 0.5
  local sent
  sent=$("$work/feed" -to "127.0.0.1:$nfport" -rate "$rate" -duration "${secs}s" | jq .records)
  sleep 1
  local rss
  rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
  kill -TERM $pid
  wait $pid || true
  local kept
  kept=$(nfdump -q -N -R "$dir" -o 'fmt:%byt' | grep -c . || true)
  echo "nfcapd $rate $sent $kept 0 $rss 0"
  rm -rf "$dir"
}

{
  for r in "${rates[@]}"; do
    run_cw cw-db "$r" --db "$work/cw-$r.db"
    run_cw cw-nodb "$r" --no-db
    run_nfcapd "$r"
  done
} | tee "$work/results"

awk '
  { name=$1; rate=$2; sent=$3; kept=$4; loss = sent > 0 ? 100*(sent-kept)/sent : 0
    printf "%-8s %9d rec/s  sent %9d  kept %9d  loss %6.2f %%  queue drops %6d  peak RSS %6.1f MB  stop %5d ms\n", name, rate, sent, kept, loss, $5, $6/1024, $7
    if (kept >= sent && rate > best[name]) best[name] = rate
    seen[name] = 1 }
  END {
    print ""
    for (n in seen) printf "highest rate with zero loss: %-8s %9d records/s\n", n, best[n]
  }' "$work/results"
