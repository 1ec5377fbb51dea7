#!/usr/bin/env bash
# Fuzzes frame parsing and validation for a bounded time (default 60 s).
#   scripts/fuzz.sh [SECONDS]
# Installs cargo-fuzz on first use. The toolchain here is stable, so the
# run uses RUSTC_BOOTSTRAP for the sanitizer-coverage flags cargo fuzz
# passes, and no sanitizer (the code under test has no unsafe).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none client_frames corpus/client_frames -- \
    -max_total_time="$seconds" -max_len=65536
