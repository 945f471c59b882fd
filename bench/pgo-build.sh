#!/usr/bin/env bash
# Profile-guided build of the production binary: builds tollgate instrumented, trains it on
# the gateway benchmark's workload (bench/gateway.sh: JWT, API-key and throttled calls,
# the REST calls that set them up, APIS more APIs deployed), merges the profile and builds
# again with it, so that the compiler lays out and inlines the request path as it runs.
#
# Needs: what bench/gateway.sh needs, and llvm-profdata of rustc's LLVM major version
# (`rustc -vV` names it; on Debian 12: apt-get install llvm-22). Usage:
#   [TRAIN_DURATION=5] [APIS=1000] [PGO_TARGET_DIR=$CARGO_TARGET_DIR/pgo] bash bench/pgo-build.sh
# Prints the path of the built binary (run it, or pass it to bench/gateway.sh as BENCH_BIN).
# Builds into their own target directories, because the instrumenting flags would otherwise
# make cargo rebuild every crate of the ordinary build (about 10 minutes each on 2 cores).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LLVM_MAJOR=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
PROFDATA=${LLVM_PROFDATA:-$(command -v "llvm-profdata-$LLVM_MAJOR" || command -v llvm-profdata || true)}
[ -n "$PROFDATA" ] || { echo "no llvm-profdata for LLVM $LLVM_MAJOR; apt-get install llvm-$LLVM_MAJOR (or set LLVM_PROFDATA)" >&2; exit 64; }
"$PROFDATA" --version | grep -q "version $LLVM_MAJOR\." ||
  { echo "$PROFDATA is not LLVM $LLVM_MAJOR (rustc's); its profiles would not be read" >&2; exit 64; }
PGO_TARGET=${PGO_TARGET_DIR:-${CARGO_TARGET_DIR:-$HERE/../target}/pgo}
# An explicit --target keeps the flags off build scripts and proc macros (they run on the host).
HOST=$(rustc -vV | sed -n 's/^host: //p')
PROFILES=$PGO_TARGET/profiles
rm -rf "$PROFILES" && mkdir -p "$PROFILES"

echo "1/4 building instrumented ($PGO_TARGET/generate)" >&2
RUSTFLAGS="-Cprofile-generate=$PROFILES" \
  cargo build --locked --profile production -p tollgate --target "$HOST" --target-dir "$PGO_TARGET/generate"
TRAIN_BIN=$PGO_TARGET/generate/$HOST/production/tollgate

echo "2/4 training on bench/gateway.sh" >&2
BENCH_BIN=$TRAIN_BIN DURATION=${TRAIN_DURATION:-5} ROUNDS=1 APIS=${APIS:-1000} bash "$HERE/gateway.sh" >&2
# The node writes its profile when it exits, after the benchmark's SIGTERM has drained it.
for _ in $(seq 1 300); do pgrep -f "^$TRAIN_BIN " >/dev/null || break; sleep 0.1; done
ls "$PROFILES"/*.profraw >/dev/null 2>&1 || { echo "the trained node wrote no profile into $PROFILES" >&2; exit 1; }

echo "3/4 merging the profile" >&2
"$PROFDATA" merge -o "$PROFILES/merged.profdata" "$PROFILES"/*.profraw
# Named by its content: cargo does not read the profile, only the flags, so a new profile
# under the same name would leave the crates it did not rebuild optimised for the old one.
PROFILE=$PGO_TARGET/tollgate-$(sha256sum "$PROFILES/merged.profdata" | cut -c1-16).profdata
rm -f "$PGO_TARGET"/tollgate-*.profdata && mv "$PROFILES/merged.profdata" "$PROFILE"

echo "4/4 building with the profile ($PGO_TARGET/use)" >&2
RUSTFLAGS="-Cprofile-use=$PROFILE" \
  cargo build --locked --profile production -p tollgate --target "$HOST" --target-dir "$PGO_TARGET/use"
echo "$PGO_TARGET/use/$HOST/production/tollgate"
