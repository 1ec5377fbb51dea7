#!/usr/bin/env bash
# The long soak that the default suite runs a short version of: 5,000
# connect/chat/disconnect cycles against a real server, then checks that
# nothing is left registered.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test hardening -- --ignored churn_soak_5000
