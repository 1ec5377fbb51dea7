#!/usr/bin/env bash
# Rewrites README.md's table of environment variables from `hearth env`
# (a test fails while the two differ).
set -euo pipefail
cd "$(dirname "$0")/.."
table=$(cargo run -q -- env)
python3 - "$table" <<'PY'
import sys
table = sys.argv[1].rstrip("\n") + "\n"
path = "README.md"
text = open(path).read()
start = text.index("| variable | setting | default |")
end = text.index("\n\n", start) + 1
open(path, "w").write(text[:start] + table + text[end:])
PY
