#!/usr/bin/env bash
# End-to-end benchmark: the built-in simulator → the release connector → a counting
# syslog receiver (examples/bench_receiver.rs), all on loopback.
#
# Backfill (default): the simulator pre-serialises N events per run (firehose mode) and
# writes them as fast as the connector reads; the receiver checks that every generated
# event id arrived exactly once. Fixed rate (--rate R): live events at R per second;
# the receiver also reports the added latency: the arrival of each record minus the
# time its event's batch left the simulator, as seen by a second stream (a tap) that
# the receiver opens itself (see examples/bench_receiver.rs).
#
# Usage: scripts/bench.sh [--events N] [--batch-size B] [--format qradar|splunk]
#        [--transport tcp|tls|relp|relp-tls|hec] [--tenants K] [--rate R]
#        [--duration SECS] [--destinations D] [--no-build] [--keep]
# With relp and relp-tls the receiver answers every record as rsyslog's imrelp does
# (rsp 200), so the figures include the connector's RELP window and answers.
# --transport hec sends to a Splunk HTTP Event Collector ([destination:bench],
# gzip, no acknowledgements) with the receiver in its HEC mode; the format is splunk.
# --destinations D gives every tenant D destinations of that transport, each with its
# own receiver (which checks exactly-once on its own): [syslog] and [destination:d2]…
# (hec: [destination:bench], [destination:bench2]…), so each tenant runs D pipelines.
# See docs/performance.md#end-to-end-scriptsbenchsh for what each
# figure means. Exit status: 0 when exactly-once held, 1 when it did not, 2 on errors.
set -euo pipefail
# Decimal points in $EPOCHREALTIME and awk output, whatever the caller's locale.
export LC_ALL=C

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

events=1000000
batch_size=100
format=qradar
transport=tcp
tenants=1
rate=0
duration=20
destinations=1
build=1
keep=0

while (($#)); do
  case "$1" in
  --events) events=${2:?--events needs a number}; shift 2 ;;
  --batch-size) batch_size=${2:?--batch-size needs a number}; shift 2 ;;
  --format) format=${2:?--format needs qradar or splunk}; shift 2 ;;
  --transport) transport=${2:?--transport needs tcp, tls, relp, relp-tls or hec}; shift 2 ;;
  --tenants) tenants=${2:?--tenants needs a number}; shift 2 ;;
  --rate) rate=${2:?--rate needs events per second}; shift 2 ;;
  --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
  --destinations) destinations=${2:?--destinations needs a number}; shift 2 ;;
  --no-build) build=0; shift ;;
  --keep) keep=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) echo "bench.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

is_count() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0)); }
is_count "$events" || { echo "bench.sh: --events must be a positive integer" >&2; exit 2; }
if ! is_count "$batch_size" || ((batch_size > 1000)); then
  echo "bench.sh: --batch-size must be 1-1000" >&2
  exit 2
fi
is_count "$tenants" || { echo "bench.sh: --tenants must be a positive integer" >&2; exit 2; }
if ! is_count "$destinations" || ((destinations > 8)); then
  echo "bench.sh: --destinations must be 1-8" >&2
  exit 2
fi
[[ $rate =~ ^[0-9]+$ ]] || { echo "bench.sh: --rate must be a number" >&2; exit 2; }
[[ $duration =~ ^[0-9]+$ ]] || { echo "bench.sh: --duration must be whole seconds" >&2; exit 2; }
case "$format" in
qradar) receiver_format=leef ;;
splunk) receiver_format=splunk-json ;;
*) echo "bench.sh: --format must be qradar or splunk" >&2; exit 2 ;;
esac
case "$transport" in
tcp | tls | relp | relp-tls) ;;
hec) format=splunk; receiver_format=splunk-json ;;
*) echo "bench.sh: --transport must be tcp, tls, relp, relp-tls or hec" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin=$target_dir/release/mrav2-syslog-connector
receiver=$target_dir/release/examples/bench_receiver

if ((build)); then
  echo "== building (release)" >&2
  (cd "$root" && cargo build --release --locked --bin mrav2-syslog-connector --example bench_receiver)
fi
for f in "$bin" "$receiver"; do
  [[ -x $f ]] || { echo "bench.sh: $f is missing; run without --no-build" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mrav2-bench.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if ((keep)); then
    echo "bench.sh: files kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the address of a "listening on [http://]ADDR" first line of $1, waiting for it
# while process $2 lives.
wait_listening() {
  local file=$1 pid=$2 what=$3 deadline=$((SECONDS + 600)) line
  while ((SECONDS < deadline)); do
    line=$(head -n 1 "$file" 2>/dev/null || true)
    if [[ $line == "listening on "* ]]; then
      line=${line#listening on }
      echo "${line#http://}"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench.sh: $what exited before listening; its output:" >&2
      cat "$file" "$work/$what.err" >&2 || true
      exit 2
    fi
    sleep 0.05
  done
  echo "bench.sh: $what did not start listening" >&2
  exit 2
}

# Events per tenant: the total is split evenly (rounded up).
per_tenant=$(((events + tenants - 1) / tenants))
names=()
for ((i = 1; i <= tenants; i++)); do names+=("t$i"); done

sim_args=(simulate --listen 127.0.0.1:0 --batch-size "$batch_size" --seed 1)
if ((rate > 0)); then
  mode="rate $rate/s per tenant for ${duration} s"
  sim_args+=(--events 0 --rate "$rate")
else
  mode="firehose backfill"
  sim_args+=(--firehose --events "$per_tenant")
fi
for name in "${names[@]}"; do sim_args+=(--tenant "$name=key-$name"); done

load_before=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "== simulator: ${sim_args[*]}" >&2
"$bin" "${sim_args[@]}" >"$work/simulator.out" 2>"$work/simulator.err" &
sim_pid=$!
pids+=("$sim_pid")
sim_addr=$(wait_listening "$work/simulator.out" "$sim_pid" simulator)

recv_args=(--listen 127.0.0.1:0 --transport "$transport" --format "$receiver_format"
  --sim "http://$sim_addr" --expect $((per_tenant * tenants)))
if ((rate > 0)); then recv_args+=(--duration "$duration" --latency); fi
for name in "${names[@]}"; do recv_args+=(--tenant "$name=key-$name"); done
# One receiver per destination; each checks exactly-once for its own destination. The
# first one's figures are the ones printed; the others' results are checked at the end.
recv_pids=()
recv_addrs=()
for ((d = 1; d <= destinations; d++)); do
  out=$work/receiver.out
  if ((d > 1)); then out=$work/receiver$d.out; fi
  args=("${recv_args[@]}")
  # Each TLS receiver writes the CA certificate its destination trusts.
  if [[ $transport == tls || $transport == relp-tls ]]; then args+=(--ca-out "${out%.out}.ca.pem"); fi
  "$receiver" "${args[@]}" >"$out" 2>"${out%.out}.err" &
  recv_pids+=($!)
  pids+=($!)
  recv_addrs+=("$(wait_listening "$out" "$!" "$(basename "${out%.out}")")")
done

config=$work/config.ini
{
  for name in "${names[@]}"; do
    if [[ $name == t1 ]]; then echo "[lookout]"; else echo "[lookout:$name]"; fi
    echo "entity_name = $name"
    echo "api_domain = http://$sim_addr"
    echo "api_key = key-$name"
    echo "threat_enabled = true"
    echo "device_enabled = true"
    echo "audit_enabled = true"
    echo "smishing_enabled = true"
    echo
  done
  for ((d = 1; d <= destinations; d++)); do
    addr=${recv_addrs[d - 1]}
    ca=$work/receiver.ca.pem
    if ((d > 1)); then ca=$work/receiver$d.ca.pem; fi
    if [[ $transport == hec ]]; then
      if ((d == 1)); then echo "[destination:bench]"; else echo "[destination:bench$d]"; fi
      echo "type = splunk_hec"
      echo "url = http://$addr"
      echo "token = bench-token"
    else
      if ((d == 1)); then echo "[syslog]"; else echo "[destination:d$d]"; fi
      echo "host = ${addr%:*}"
      echo "port = ${addr##*:}"
      echo "protocol = $transport"
      echo "forwarder_type = $format"
      if [[ $transport == tls || $transport == relp-tls ]]; then echo "ca_file = $ca"; fi
    fi
    echo
  done
  echo
  echo "[connector]"
  echo "state_dir = $work/state"
} >"$config"
chmod 600 "$config"
mkdir -p "$work/state"

echo "== connector: $mode, $tenants tenant(s), $format over $transport, $destinations destination(s) each" >&2
spawned=$EPOCHREALTIME
# Everything is on loopback: a proxy from the caller's environment must not apply.
env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy -u ALL_PROXY -u all_proxy \
  "$bin" --config "$config" 2>"$work/connector.err" &
conn_pid=$!
pids+=("$conn_pid")

recv_rc=0
for pid in "${recv_pids[@]}"; do
  wait "$pid" || recv_rc=$?
done

# The connector's figures, read before it is stopped: CPU (user + system) and peak RSS.
cpu_s=n/a
rss_mb=n/a
if [[ -r /proc/$conn_pid/stat ]]; then
  ticks=$(getconf CLK_TCK)
  # Fields after the ")" that ends the command name: utime is 14th, stime 15th overall.
  read -r utime stime < <(sed 's/^.*) //' "/proc/$conn_pid/stat" | awk '{print $12, $13}')
  cpu_s=$(awk -v u="$utime" -v s="$stime" -v t="$ticks" 'BEGIN {printf "%.2f", (u + s) / t}')
  rss_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$conn_pid/status")
  rss_mb=$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k / 1024}')
else
  echo "bench.sh: the connector exited early; its log:" >&2
  tail -n 20 "$work/connector.err" >&2 || true
fi
kill -TERM "$conn_pid" 2>/dev/null || true
conn_rc=0
wait "$conn_pid" || conn_rc=$?
load_after=$(cut -d ' ' -f 1-3 /proc/loadavg)

value() { awk -F= -v k="$1" '$1 == k {print $2; exit}' "$work/receiver.out"; }
if [[ $(value result) == "" ]]; then
  echo "bench.sh: the receiver reported nothing (exit $recv_rc); its errors:" >&2
  cat "$work/receiver.err" >&2 || true
  if ! kill -0 "$sim_pid" 2>/dev/null; then
    echo "bench.sh: the simulator is gone (killed from outside?); its last lines:" >&2
    tail -n 5 "$work/simulator.err" >&2 || true
  fi
  echo "bench.sh: the connector's last log lines (exit status $conn_rc):" >&2
  tail -n 5 "$work/connector.err" >&2 || true
  exit 2
fi
received=$(value events_received)
records=$(value records)
last=$(value last_record_unix)
first_stream=$(value first_stream_request_unix)
sse_bytes=$(awk '/simulator: firehose/ {for (i = 1; i <= NF; i++) if ($i ~ /^bytes=/) {sub("bytes=", "", $i); s += $i}} END {print s + 0}' "$work/simulator.err")

wall=$(awk -v a="$spawned" -v b="$last" 'BEGIN {printf "%.3f", b - a}')
startup_ms=n/a
if [[ $first_stream != n/a ]]; then
  startup_ms=$(awk -v a="$spawned" -v b="$first_stream" 'BEGIN {printf "%.0f", (b - a) * 1000}')
fi

echo
echo "mrav2-syslog-connector end-to-end benchmark ($mode)"
echo "format $format over $transport, $tenants tenant(s), $destinations destination(s) each, batch size $batch_size, $(nproc) CPUs"
echo "load average before: $load_before, after: $load_after"
echo
if ((rate > 0)); then
  printf '%-10s %-9s %-8s %-9s %-8s %-9s %-13s %-8s\n' \
    tenants events records p50_ms p99_ms max_ms cpu_s_per_M peak_rss_MB
  cpu_per_m=$(awk -v c="$cpu_s" -v n="$received" 'BEGIN {if (c == "n/a" || n == 0) print "n/a"; else printf "%.2f", c / n * 1e6}')
  printf '%-10s %-9s %-8s %-9s %-8s %-9s %-13s %-8s\n' "$tenants" "$received" "$records" \
    "$(value latency_p50_ms)" "$(value latency_p99_ms)" "$(value latency_max_ms)" "$cpu_per_m" "$rss_mb"
  echo
  echo "latency: record arrival at the receiver minus arrival of the same event on the" \
    "receiver's own stream from the simulator (the tap), over $(value latency_samples)" \
    "records arriving 2 s to $duration s after the first one ($(value latency_untapped) without a tap time)"
else
  printf '%-10s %-9s %-8s %-10s %-11s %-12s %-13s %-12s %-10s\n' \
    tenants events records wall_s events/s input_MB/s cpu_s_per_M peak_rss_MB startup_ms
  awk -v k="$tenants" -v n="$received" -v r="$records" -v w="$wall" -v b="$sse_bytes" \
    -v c="$cpu_s" -v m="$rss_mb" -v s="$startup_ms" 'BEGIN {
      cpm = (c == "n/a" || n == 0) ? "n/a" : sprintf("%.2f", c / n * 1e6)
      printf "%-10s %-9s %-8s %-10.3f %-11.0f %-12.1f %-13s %-12s %-10s\n",
        k, n, r, w, n / w, b / w / 1e6, cpm, m, s
    }'
fi
echo
echo "exactly-once: $(value result) (expected $(value events_expected), received $received," \
  "duplicates $(value duplicates), missing $(value missing), unexpected $(value unexpected)," \
  "malformed $(value malformed); $(value connections) connection(s))"
for ((d = 2; d <= destinations; d++)); do
  echo "exactly-once at destination $d: $(awk -F= '$1 == "result" {print $2; exit}' "$work/receiver$d.out")" \
    "($(awk -F= '$1 == "events_received" {print $2; exit}' "$work/receiver$d.out") received)"
done
echo "connector: CPU $cpu_s s, exit status $conn_rc after SIGTERM"

if ((recv_rc != 0)); then
  echo "bench.sh: exactly-once check FAILED" >&2
  exit 1
fi
