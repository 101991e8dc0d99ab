#!/usr/bin/env python3
"""Reports cycles in a crate's module graph (issue #11: the clinic's modules must form a DAG).

Usage: scripts/module-cycles.py [--top] [--edges] [--known=FILE] [SRC_DIR]
       (default SRC_DIR: clinic/src)

A node is a file module (`chat/service.rs` is `chat::service`, `chat/mod.rs` is `chat`). An
edge M -> T means M's code names something in T: a `use` of `crate::…`, `super::…`, `self::…`
or a child module, or such a path written inline. A name that a module only re-exports
(`pub use model::ChatError`) is followed to the module that defines it, so going through a
parent's re-export is no edge to the parent. Not counted:
  - the crate root (lib.rs): it is the composition point that every module hangs its
    `impl Clinic` and its routes on, and that lists every module's routes and state;
  - `#[cfg(test)] mod tests` blocks (unit tests may reach anywhere);
  - paths in comments and string literals.
`--top` folds submodules into their top-level module (`chat::service` -> `chat`) and reports
cycles between top-level modules only; edges inside one top-level module are dropped.
`--edges` prints every edge as well.
`--known=FILE` lists cycles already known (one per line, as printed: `a <-> b <-> c`; `#`
comments): they are reported but do not fail, and a listed cycle that is gone fails, so the file
must shrink as cycles are removed (it is meant to be empty).

Exit status: 0 when the graph is acyclic, 1 when there is a cycle (each strongly connected
component is printed with the edges that close it), 2 on usage errors.
"""

import os
import re
import sys


def strip_code(text):
    """Removes comments, string/char literals and `#[cfg(test)] mod … { … }` blocks."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            i = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            i += len(m.group(0))
            out.append("' '")
        else:
            out.append(c)
            i += 1
    code = "".join(out)
    # Drop test modules: from `#[cfg(test)]` + `mod name {` to its matching brace.
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", code)
        if not m:
            return code
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        code = code[:m.start()] + code[j:]


def expand_use(tree):
    """`a::{b, c::{d, e as f}, self}` -> [[a,b],[a,c,d],[a,c,e],[a]] (aliases dropped)."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))

    def parse(s, prefix):
        paths, depth, start = [], 0, 0
        parts = []
        for k, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:k])
                start = k + 1
        parts.append(s[start:])
        for part in parts:
            if not part:
                continue
            brace = part.find("{")
            if brace >= 0:
                head = [p for p in part[:brace].split("::") if p]
                paths += parse(part[brace + 1:part.rfind("}")], prefix + head)
            else:
                segs = [p for p in part.split("::") if p]
                if segs == ["self"]:
                    paths.append(prefix)
                elif segs == ["*"]:
                    paths.append(prefix)
                else:
                    paths.append(prefix + [p for p in segs if p != "*"])
        return paths

    return parse(tree, [])


def module_files(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel == ["lib"] or rel == ["main"]:
                name = ""
            elif rel[-1] == "mod":
                name = "::".join(rel[:-1])
            else:
                name = "::".join(rel)
            mods[name] = os.path.join(root, f)
    return mods


USE_RE = re.compile(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")
INLINE_RE = re.compile(r"\b((?:crate|super|self|[a-z_][a-z0-9_]*)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def main(argv):
    top = "--top" in argv
    show_edges = "--edges" in argv
    known = set()
    for a in argv:
        if a.startswith("--known="):
            for line in open(a[len("--known="):], encoding="utf-8"):
                line = line.split("#")[0].strip()
                if line:
                    known.add(" <-> ".join(sorted(p.strip() for p in line.split("<->"))))
    args = [a for a in argv if not a.startswith("--")]
    if len(args) > 1:
        print(__doc__, file=sys.stderr)
        return 2
    src = args[0] if args else "clinic/src"
    mods = module_files(src)
    codes = {m: strip_code(open(p, encoding="utf-8").read()) for m, p in mods.items()}

    def split(m):
        return m.split("::") if m else []

    children = {m: set(re.findall(r"\bmod\s+(\w+)\s*;", c)) for m, c in codes.items()}

    def absolute(mod, segs):
        """A path as written in `mod`, made absolute; None when it is not a crate path."""
        if not segs:
            return None
        base = split(mod)
        head = segs[0]
        if head == "crate":
            return segs[1:]
        if head == "self":
            return base + segs[1:]
        if head == "super":
            k = 0
            while k < len(segs) and segs[k] == "super":
                k += 1
            return base[:len(base) - k] + segs[k:]
        if head in children.get(mod, ()):
            return base + segs
        return None

    # Re-exports: module -> {name: absolute path}.
    reexports = {}
    for m, c in codes.items():
        table = {}
        for vis, tree in USE_RE.findall(c):
            if not vis:
                continue
            for segs in expand_use(tree):
                a = absolute(m, segs)
                if a:
                    table[segs[-1]] = a
        reexports[m] = table

    def resolve(path, depth=0):
        """The file module that defines what `path` (absolute segments) names."""
        for k in range(len(path), -1, -1):
            name = "::".join(path[:k])
            if name in mods:
                rest = path[k:]
                if rest and depth < 8 and rest[0] in reexports.get(name, {}):
                    return resolve(reexports[name][rest[0]] + rest[1:], depth + 1)
                return name
        return None

    edges = {}
    for m, c in codes.items():
        if m == "":
            continue
        paths = []
        for _vis, tree in USE_RE.findall(c):
            paths += expand_use(tree)
        for p in INLINE_RE.findall(USE_RE.sub(" ", c)):
            paths.append(p.split("::"))
        for segs in paths:
            a = absolute(m, segs)
            if a is None:
                continue
            t = resolve(a)
            if t is None or t == "" or t == m:
                continue
            s, d = m, t
            if top:
                s, d = s.split("::")[0], d.split("::")[0]
                if s == d:
                    continue
            edges.setdefault(s, set()).add(d)

    nodes = sorted(set(edges) | {d for ds in edges.values() for d in ds})
    if show_edges:
        for s in nodes:
            for d in sorted(edges.get(s, ())):
                print(f"{s} -> {d}")

    # Tarjan's strongly connected components.
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
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
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            strong(v)

    level = "top-level modules" if top else "modules"
    found = {" <-> ".join(comp): comp for comp in sccs}
    new = sorted(set(found) - known)
    gone = sorted(known - set(found))
    if not sccs:
        print(f"{src}: {len(nodes)} {level}, no cycles")
    else:
        print(f"{src}: {len(sccs)} cycle(s) between {level}:")
    for name in sorted(found):
        inside = set(found[name])
        tag = " (known)" if name in known else ""
        print(f"  {name}{tag}")
        for s in found[name]:
            for d in sorted(edges.get(s, ())):
                if d in inside:
                    print(f"      {s} -> {d}")
    for name in gone:
        print(f"  gone, remove it from the known list: {name}")
    return 1 if new or gone else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
