#!/usr/bin/env bash
# The folder tree of src/ is the architecture (design.md §4): each folder
# imports only the folders below it, and no module imports one that imports
# it back. Fails on an upward folder edge or any import cycle; prints the
# folder graph with --graph.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/check_layers.py "$@"
