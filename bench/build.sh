#!/usr/bin/env bash
# What a new user pays before the first call (issue 35): the cold build time of the release
# binary, its size as built and stripped, and the RSS of an idle all-in-one node.
#   - builds `cargo build --release -p tollgate --timings` in an empty target directory (no
#     artifact reused; crates already downloaded are), timing the wall clock;
#   - reports the binary's size as built, its size stripped (`strip` on a copy), and how much
#     of it is debug sections;
#   - starts the binary as an all-in-one node (embedded SQLite, a fresh data directory,
#     ports of its own), waits until it is ready, then reads VmRSS once a second for
#     IDLE_SECONDS (30) and prints the last reading and the peak;
#   - prints the machine, the date and the load average before the build, since a busy
#     machine builds slower (the figures are this machine's under these conditions).
# Usage:
#   bash bench/build.sh                                  # cold build, size, idle RSS
#   BENCH_BIN=path/to/tollgate bash bench/build.sh       # size and idle RSS of that binary only
#   [BUILD_TARGET_DIR=dir] [IDLE_SECONDS=30] [BASE_PORT=22000] [KEEP=1] [TIMINGS_OUT=file]
# The cargo timings report (where the build's time goes) is copied to TIMINGS_OUT
# (/tmp/tollgate-cargo-timing.html) and its ten longest units printed; KEEP=1 keeps the
# target directory.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
IDLE_SECONDS=${IDLE_SECONDS:-30}
BASE=${BASE_PORT:-22000}
TIMINGS_OUT=${TIMINGS_OUT:-/tmp/tollgate-cargo-timing.html}
WORK=$(mktemp -d)
cleanup() {
  [ -n "${NODE_PID:-}" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
  [ -z "${KEEP:-}" ] && [ -n "${OWN_TARGET:-}" ] && rm -rf "$OWN_TARGET"
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); rustc $(rustc --version | cut -d' ' -f2)"

BIN=${BENCH_BIN:-}
if [ -z "$BIN" ]; then
  if [ -n "${BUILD_TARGET_DIR:-}" ]; then
    TARGET=$BUILD_TARGET_DIR
  else
    OWN_TARGET=$(mktemp -d)
    TARGET=$OWN_TARGET
  fi
  [ -z "$(ls -A "$TARGET" 2>/dev/null)" ] || { echo "BUILD_TARGET_DIR=$TARGET is not empty: a cold build needs an empty one" >&2; exit 64; }
  echo "cold build: cargo build --release -p tollgate --timings (target $TARGET)"
  started=$(date +%s.%N)
  (cd "$HERE/.." && CARGO_TARGET_DIR="$TARGET" cargo build --release -p tollgate --locked --timings >"$WORK/build.log" 2>&1) || {
    tail -30 "$WORK/build.log"
    exit 1
  }
  ended=$(date +%s.%N)
  BIN=$TARGET/release/tollgate
  awk -v s="$started" -v e="$ended" 'BEGIN { t = e - s; printf "cold build: %.0f s (%.1f min)\n", t, t / 60 }'
  report=$(ls "$TARGET"/cargo-timings/cargo-timing-*.html | tail -1)
  cp "$report" "$TIMINGS_OUT"
  echo "timings report: $TIMINGS_OUT; the longest units:"
  python3 "$HERE/build_timings.py" "$TIMINGS_OUT" 10
fi

size=$(stat -c %s "$BIN")
cp "$BIN" "$WORK/stripped"
strip "$WORK/stripped"
stripped=$(stat -c %s "$WORK/stripped")
# Debug sections as stored in the file (compressed ones at their compressed size), and as
# they would be uncompressed (what objdump reports).
debug=$(readelf -S -W "$BIN" | sed 's/^ *\[ *[0-9]*\]//' | awk '$1 ~ /^\.debug/ { sum += strtonum("0x" $5) } END { print sum + 0 }')
debug_full=$(objdump -h "$BIN" | awk '$2 ~ /^\.debug/ { sum += strtonum("0x" $3) } END { print sum + 0 }')
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
echo "binary: $BIN"
echo "size as built: $(mb "$size"); stripped: $(mb "$stripped"); debug sections: $(mb "$debug") in the file ($(mb "$debug_full") uncompressed)"

# An all-in-one node on ports of its own, with nothing configured but where to listen.
DATA=$WORK/data
env -u RUST_LOG $(env | grep -o '^TOLLGATE_[A-Z_]*' | sed 's/^/-u /') \
  TOLLGATE_NODE__DATA_DIR="$DATA" \
  TOLLGATE_MANAGEMENT__LISTEN="127.0.0.1:$BASE" \
  TOLLGATE_GATEWAY__LISTEN="127.0.0.1:$((BASE + 1))" \
  TOLLGATE_TRAFFIC_MANAGER__LISTEN="127.0.0.1:$((BASE + 2))" \
  TOLLGATE_LOG__LEVEL=warn \
  "$BIN" serve >"$WORK/node.log" 2>&1 &
NODE_PID=$!
ready=""
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$BASE/health/ready" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$NODE_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$ready" ] || { echo "the node did not become ready:" >&2; tail -20 "$WORK/node.log" >&2; exit 1; }
peak=0
last=0
for _ in $(seq 1 "$IDLE_SECONDS"); do
  sleep 1
  last=$(awk '/^VmRSS:/ { print $2 }' "/proc/$NODE_PID/status")
  [ "$last" -gt "$peak" ] && peak=$last
done
awk -v l="$last" -v p="$peak" -v s="$IDLE_SECONDS" \
  'BEGIN { printf "idle all-in-one node (SQLite), RSS after %d s ready: %.1f MB (peak while idle %.1f MB)\n", s, l / 1024, p / 1024 }'
