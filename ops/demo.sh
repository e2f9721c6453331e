#!/usr/bin/env bash
# ops/demo.sh - README command #1: the main job end to end.
# Today: set up (packages, the real MiniLM encoder, build) and show the two programs' help.
# The streaming job (local Kafka, replay, ssnad learning online) lands with issue #8.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/ops/setup.sh"
"$root/build/daemon/ssna" --help
"$root/build/daemon/ssnad" --help
