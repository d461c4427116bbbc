#!/usr/bin/env bash
# Every atomic, cell, lock, Arc, thread and spin hint in src/ must come from the
# loom shim (src/loom/), so `--cfg loom` checks the real code (style.md §4-8).
# clippy's disallowed-types cannot enforce this: it resolves through the shim's
# re-exports and flags the shim's own users.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='std::sync::atomic|std::cell::UnsafeCell|std::sync::(Arc|Mutex|Condvar)\b|std::thread::(spawn|park|yield_now|Builder|current|sleep)|std::hint::spin_loop|core::sync::atomic'
# Allowed: the shim itself; test modules (they test through real threads);
# the topic-name interner and the timestamp epoch, and the pinning module's
# test-only fault injection (process-global, outside every protocol, never
# under loom).
hits=$(grep -rnE "$pattern" src --include='*.rs' \
    | grep -v '^src/loom/' \
    | grep -vE '^src/(event/name|sys/epoch)\.rs:.*(OnceLock|Mutex)' \
    | grep -vE '^src/sys/pinning\.rs:.*std::sync::Mutex' \
    | grep -vE '^src/[a-z_/]+\.rs:[0-9]+:\s*(//|///)' || true)
# Drop hits inside `#[cfg(all(test, not(loom)))] mod tests` blocks.
filtered=""
while IFS= read -r line; do
    [ -z "$line" ] && continue
    file=${line%%:*}; rest=${line#*:}; num=${rest%%:*}
    start=$(grep -n 'mod tests {' "$file" | head -1 | cut -d: -f1 || true)
    if [ -n "$start" ] && [ "$num" -gt "$start" ]; then continue; fi
    filtered+="$line"$'\n'
done <<< "$hits"
if [ -n "$filtered" ]; then
    echo "error: synchronization primitives used outside the loom shim (src/loom/):" >&2
    printf '%s' "$filtered" >&2
    exit 1
fi
echo "shim check: ok"
