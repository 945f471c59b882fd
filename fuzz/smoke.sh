#!/usr/bin/env bash
# A short run of every fuzz target, for CI: builds them instrumented (cargo-fuzz with
# libFuzzer on the stable toolchain, no sanitizer, debug assertions on) and runs each from
# its committed seed corpus, FUZZ_RUNS executions (100 000) from seed FUZZ_SEED (1).
# Fails on any crash, panic, timeout (a run over 10 s) or out-of-memory, and prints the
# input that caused it.
# How to run the targets for longer, and what they check: docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")"

# By default a fixed number of executions from a fixed seed: the same inputs on every run of
# the same code, so CI checks the committed corpora and a stretch beyond them without
# failing on whatever a random run happens to find that day (the long runs explore; see
# docs/fuzzing.md). FUZZ_SECONDS=n runs each target n seconds from a random seed instead.
if [ -n "${FUZZ_SECONDS:-}" ]; then
  BUDGET=(-max_total_time="$FUZZ_SECONDS")
else
  BUDGET=(-runs="${FUZZ_RUNS:-100000}" -seed="${FUZZ_SEED:-1}")
fi
CARGO_FUZZ_VERSION=0.13.2
# Instrumented artifacts share nothing with the workspace's build: a directory of their own.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/tollgate-fuzz-target}"
export CARGO_TERM_COLOR=never

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi

# The flags every build and run of the targets uses (docs/fuzzing.md says why).
FLAGS=(--sanitizer none --debug-assertions --codegen-units 16)

started=$(date +%s)
cargo fuzz build "${FLAGS[@]}"
built=$(date +%s)
echo "fuzz targets built in $((built - started)) s"

dict_for() {
  case "$1" in
    http1_* | backend_response) echo "-dict=dict/http.dict" ;;
    custom_rule) echo "-dict=dict/custom_rule.dict" ;;
    openapi_import) echo "-dict=dict/openapi.dict" ;;
    multipart) echo "-dict=dict/multipart.dict" ;;
    token_verify) echo "-dict=dict/jwt.dict" ;;
  esac
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in $(cargo fuzz list); do
  mkdir -p "$work/corpus/$target" "$work/artifacts/$target" "corpus/$target"
  log="$work/$target.log"
  # New inputs go to the scratch corpus (first directory); the seeds are only read.
  # shellcheck disable=SC2046
  if cargo fuzz run "${FLAGS[@]}" "$target" "$work/corpus/$target" "corpus/$target" -- \
      "${BUDGET[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$target/" $(dict_for "$target") >"$log" 2>&1; then
    runs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "fuzz ${target}: ok, ${runs} runs, ${cov}, corpus $(ls "$work/corpus/$target" | wc -l) new"
  else
    echo "fuzz ${target}: FAILED"
    tail -40 "$log"
    for artifact in "$work/artifacts/$target"/*; do
      [ -f "$artifact" ] || continue
      echo "--- reproducer $(basename "$artifact") (base64):"
      base64 -w 0 "$artifact"
      echo
    done
    failed+=("$target")
  fi
done
echo "fuzz smoke run: $(($(date +%s) - started)) s in all"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz targets that failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: $(cargo fuzz list | wc -l) passed, 0 failed"
