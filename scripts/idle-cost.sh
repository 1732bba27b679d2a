#!/usr/bin/env bash
# What idle tenants cost: the release connector with K tenants whose streams are open
# and carry heartbeats only (the built-in simulator, no history, no live events),
# measured from /proc once every stream is open and has settled.
#
# Usage: scripts/idle-cost.sh [--tenants K] [--minutes M] [--heartbeat-ms MS]
#        [--no-build] [--keep]
# Defaults: 1000 tenants, 1 minute, heartbeats every 5000 ms (the simulator's
# default). Records go to standard output, which is /dev/null here (no events come,
# so no destination connection is opened either way).
#
# Prints one line: tenants, seconds from starting the connector until every stream
# was open, RSS after start-up (VmRSS, MB), RSS at the end, the peak (VmHWM), and the
# CPU seconds (user + system, /proc/PID/stat) used during the measured minutes, per
# minute. RSS per idle tenant is the difference between two
# runs with different K divided by the difference in K (see docs/performance.md).
# Exit status: 0 when measured, 2 on errors (a process that did not start, a stream
# that did not open).
set -euo pipefail
export LC_ALL=C

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

tenants=1000
minutes=1
heartbeat_ms=5000
build=1
keep=0
while (($#)); do
  case "$1" in
  --tenants) tenants=${2:?--tenants needs a number}; shift 2 ;;
  --minutes) minutes=${2:?--minutes needs a number}; shift 2 ;;
  --heartbeat-ms) heartbeat_ms=${2:?--heartbeat-ms needs milliseconds}; shift 2 ;;
  --no-build) build=0; shift ;;
  --keep) keep=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) echo "idle-cost.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$tenants" "$minutes" "$heartbeat_ms"; do
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n == 0)); then
    echo "idle-cost.sh: numbers must be positive integers" >&2
    exit 2
  fi
done

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd -- "$root"
if ((build)); then
  cargo build --release --locked --bin mrav2-syslog-connector >&2
fi
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/release/mrav2-syslog-connector
[[ -x $bin ]] || { echo "idle-cost.sh: $bin is missing; run without --no-build" >&2; exit 2; }

work=$(mktemp -d /tmp/mrav2-idle.XXXXXX)
sim_pid=
conn_pid=
cleanup() {
  if [[ -n $conn_pid ]]; then kill "$conn_pid" 2>/dev/null || true; fi
  if [[ -n $sim_pid ]]; then kill "$sim_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  if ((keep)); then echo "idle-cost.sh: files kept in $work" >&2; else rm -rf -- "$work"; fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

names=()
for ((i = 0; i < tenants; i++)); do names+=("$(printf 't%05d' "$i")"); done

# The simulator serving every tenant, with nothing to send but heartbeats.
sim_args=(simulate --listen 127.0.0.1:0 --events 0 --rate 0 --heartbeat-ms "$heartbeat_ms")
for n in "${names[@]}"; do sim_args+=(--tenant "$n=key-$n"); done
"$bin" "${sim_args[@]}" >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
for ((i = 0; i < 200; i++)); do
  addr=$(sed -n 's|^listening on http://||p' "$work/sim.out" 2>/dev/null || true)
  [[ -n $addr ]] && break
  sleep 0.05
done
[[ -n ${addr:-} ]] || { echo "idle-cost.sh: the simulator did not start:" >&2; cat "$work/sim.err" >&2; exit 2; }

{
  printf '[lookout]\napi_domain = http://%s\n\n' "$addr"
  for n in "${names[@]}"; do printf '[lookout:%s]\napi_key = key-%s\n\n' "$n" "$n"; done
  printf '[syslog]\nprotocol = stdout\n'
} >"$work/config.ini"
chmod 600 "$work/config.ini"
mkdir "$work/state"

started=$EPOCHREALTIME
"$bin" --config "$work/config.ini" --state-dir "$work/state" >/dev/null 2>"$work/connector.log" &
conn_pid=$!

# Every tenant's stream is open when the simulator has answered K stream requests.
# (HTTP/1.0 over bash's /dev/tcp: the simulator then closes after its answer.)
streams() {
  local answer
  exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}"
  printf 'GET /_sim/requests HTTP/1.0\r\nHost: %s\r\n\r\n' "$addr" >&3
  answer=$(cat <&3)
  exec 3<&-
  grep -o '"endpoint":"stream"' <<<"$answer" | wc -l
}
for ((i = 0; i < 600; i++)); do
  kill -0 "$conn_pid" 2>/dev/null || { echo "idle-cost.sh: the connector exited:" >&2; tail -n 20 "$work/connector.log" >&2; exit 2; }
  (($(streams) >= tenants)) && break
  sleep 0.5
done
opened=$(streams)
startup=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
((opened >= tenants)) || { echo "idle-cost.sh: only $opened of $tenants streams opened" >&2; exit 2; }
((opened == tenants)) || echo "idle-cost.sh: note: $opened stream requests for $tenants tenants (some reconnected)" >&2

# Let start-up work (token caches, first heartbeats) settle, then measure.
sleep 10
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$conn_pid/status"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$conn_pid/stat"; }
hz=$(getconf CLK_TCK)
rss_start=$(kb VmRSS)
cpu_start=$(ticks)
sleep $((minutes * 60))
rss_end=$(kb VmRSS)
cpu_end=$(ticks)
hwm=$(kb VmHWM)
reconnects=$(($(streams) - opened))

printf '%-8s %-10s %-14s %-12s %-12s %-14s %-10s\n' \
  tenants startup_s rss_start_MB rss_end_MB peak_MB cpu_s_per_min reconnects
awk -v k="$tenants" -v s="$startup" -v a="$rss_start" -v b="$rss_end" -v h="$hwm" \
  -v c0="$cpu_start" -v c1="$cpu_end" -v hz="$hz" -v m="$minutes" -v r="$reconnects" \
  'BEGIN { printf "%-8d %-10s %-14.1f %-12.1f %-12.1f %-14.2f %-10d\n", k, s, a / 1024, b / 1024, h / 1024, (c1 - c0) / hz / m, r }'
