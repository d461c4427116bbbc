#!/usr/bin/env bash
# Makes (once) the Python venv with nats-py that tests/nats_cross_language.rs
# uses, under target/ so it is never committed, and prints its python path.
# A venv that already imports `nats` is reused as is (a second or two).
#
#   PY=$(bash scripts/nats_py/venv.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${PINBUS_NATS_VENV:-$root/target/nats-py-venv}"
req="$root/scripts/nats_py/requirements.txt"
if [ -x "$venv/bin/python" ] && cmp -s "$req" "$venv/requirements.txt" \
    && "$venv/bin/python" -c 'import nats' 2>/dev/null; then
    echo "$venv/bin/python"
    exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
    echo "python3 with the venv module is needed (apt-get install -y python3-venv)" >&2
    exit 1
fi
rm -rf "$venv"
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
cp "$req" "$venv/requirements.txt"
echo "$venv/bin/python"
