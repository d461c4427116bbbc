#!/usr/bin/env python3
"""The folder tree of src/ is the architecture (design.md §4): each folder
imports only folders below it in LAYERS, and no module imports one that
imports it back. This reads every `crate::`, `super::` and `self::` path in
src/ (comments and test modules left out), maps it to the module it names,
and fails on a folder edge that goes up and on any import cycle between
modules. `--graph` prints the folder graph.

    python3 scripts/check_layers.py [--graph]
"""
import os
import re
import sys

# Top to bottom: a folder may import only folders after it.
LAYERS = ["nats", "engine", "topic", "runtime", "failure", "layer", "observe",
          "lane", "time", "event", "core", "sys", "loom"]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def modules():
    """Module path (tuple) -> file, for every .rs file under src/."""
    found = {}
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), ROOT)
            parts = rel[:-3].split(os.sep)
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts == ["lib"]:
                parts = []
            found[tuple(parts)] = os.path.join(dirpath, f)
    return found


def code_lines(path):
    """The file's lines without comments and without `mod tests` blocks."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out, depth, skipping = [], 0, None
    for line in text.split("\n"):
        stripped = line.split("//")[0]
        if skipping is None and re.match(r"\s*(pub(\(crate\))?\s+)?mod tests\s*\{", stripped):
            skipping = depth
        depth += stripped.count("{") - stripped.count("}")
        if skipping is not None:
            if depth <= skipping:
                skipping = None
            continue
        out.append(stripped)
    return out


PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
GROUP = re.compile(r"\b(crate|super|self)((?:::\w+)*)::\{([^;]*)\}")


def refs(lines):
    """Every path the code names, as (anchor, [segments])."""
    text = "\n".join(lines)
    for m in GROUP.finditer(text):
        head = [s for s in m.group(2).split("::") if s]
        for item in re.split(r",", m.group(3)):
            item = item.strip().split(" as ")[0].strip()
            item = re.sub(r"[{}\s]", "", item)
            if item:
                yield m.group(1), head + item.split("::")[:1]
    for m in PATH.finditer(text):
        yield m.group(1), [s for s in m.group(2).split("::") if s]


def resolve(mods, here, anchor, segs):
    if anchor == "crate":
        base = []
    elif anchor == "self":
        base = list(here)
    else:
        base = list(here[:-1])
        while segs and segs[0] == "super":
            base, segs = base[:-1], segs[1:]
    path = base + segs
    for n in range(len(path), 0, -1):
        if tuple(path[:n]) in mods:
            return tuple(path[:n])
    return None


def main():
    mods = modules()
    edges = {}
    for mod, path in mods.items():
        if not mod:
            continue  # lib.rs re-exports only
        for anchor, segs in refs(code_lines(path)):
            target = resolve(mods, mod, anchor, segs)
            if target is None or target == mod or mod[:len(target)] == target:
                continue  # itself, or a parent module (its mod.rs)
            if target[:len(mod)] == mod:
                continue  # a child of this module
            edges.setdefault(mod, set()).add(target)
    problems = []
    # A folder's mod.rs is its map: modules and re-exports only, so that the
    # edges between its children are all the edges there are.
    for mod, path in mods.items():
        if not path.endswith("mod.rs"):
            continue
        for line in code_lines(path):
            if re.match(r"\s*(pub(\([a-z]+\))?\s+)?(struct|enum|fn|impl|trait|type|const|static)\b", line):
                problems.append(f"{os.path.relpath(path, os.path.join(ROOT, '..'))}: defines items ({line.strip()[:40]}); keep a folder's mod.rs to modules and re-exports")
                break
    folder_edges = {}
    for a, bs in edges.items():
        for b in bs:
            fa, fb = a[0], b[0]
            if fa == fb:
                continue
            folder_edges.setdefault(fa, set()).add(fb)
            for f in (fa, fb):
                if f not in LAYERS:
                    problems.append(f"src/{f}: not a known layer (LAYERS in this script)")
            if fa in LAYERS and fb in LAYERS and LAYERS.index(fa) >= LAYERS.index(fb):
                problems.append(f"{'::'.join(a)} imports {'::'.join(b)}: folder {fa}/ may not import {fb}/ (above it)")
    # Module-level cycles: strongly connected components (Tarjan).
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    for comp in comps:
        names = sorted("::".join(c) for c in comp)
        problems.append(f"import cycle between {len(names)} modules: {', '.join(names)}")
    if "--graph" in sys.argv:
        rank = {f: i for i, f in enumerate(LAYERS)}
        for f in sorted(folder_edges, key=lambda f: (rank.get(f, -1), f)):
            targets = sorted(folder_edges[f], key=lambda t: (rank.get(t, -1), t))
            print(f"{f}/ -> {', '.join(targets)}")
    for p in sorted(set(problems)):
        print(f"error: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"layering check: ok ({len(mods)} modules, {sum(len(b) for b in edges.values())} edges, 0 cycles)")


if __name__ == "__main__":
    main()
