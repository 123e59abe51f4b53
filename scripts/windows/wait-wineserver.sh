#!/usr/bin/env bash
# Waits until the prefix's wineserver has finished setting the prefix up.
set -euo pipefail
wine=$1
server=$(dirname "$wine")/wineserver
[ -x "$server" ] || server=$(command -v wineserver || true)
[ -n "$server" ] && "$server" -w || sleep 10
