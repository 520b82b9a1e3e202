#!/usr/bin/env python3
"""Module dependency graph of a Rust crate from its `crate::`/`super::` paths (no cargo needed).
Usage: modgraph.py SRC_DIR [--depth N]   prints edges and any cycles (strongly connected components)."""
import os, re, sys
src = sys.argv[1]
depth = int(sys.argv[sys.argv.index('--depth')+1]) if '--depth' in sys.argv else 2
def modpath(f):
    rel = os.path.relpath(f, src)[:-3].split(os.sep)
    if rel[-1] == 'mod': rel = rel[:-1]
    if rel in (['lib'], ['main']): rel = []
    return rel
def strip(text):
    """Drops comments, string and char literals (one pass), and the trailing test module."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i); i = n if j < 0 else j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2); i = n if j < 0 else j + 2
        elif c == 'r' and re.match(r'r#*"', text[i:i+10]) and not (i and (text[i-1].isalnum() or text[i-1] == '_')):
            m = re.match(r'r(#*)"', text[i:]); close = '"' + m.group(1)
            j = text.find(close, i + len(m.group(0))); i = n if j < 0 else j + len(close); out.append('""')
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            i = j + 1; out.append('""')
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^'\\])'", text[i:])
            if m: i += len(m.group(0)); out.append("' '")
            else: out.append(c); i += 1
        else:
            out.append(c); i += 1
    text = ''.join(out)
    m = re.search(r'#\[cfg\(test\)\]\s*mod\s+tests', text)
    return text[:m.start()] if m else text
def expand_use(tree):
    """expand a use tree like a::{b, c::{d}} into paths"""
    tree = tree.replace(' ', '').replace('\n','')
    out = []
    def rec(prefix, t):
        # split top-level commas
        parts, depthc, cur = [], 0, ''
        for ch in t:
            if ch == '{': depthc += 1
            if ch == '}': depthc -= 1
            if ch == ',' and depthc == 0: parts.append(cur); cur=''
            else: cur += ch
        if cur: parts.append(cur)
        for p in parts:
            if '{' in p:
                i = p.index('{'); head = p[:i].rstrip(':'); inner = p[i+1:p.rindex('}')]
                rec(prefix + [x for x in head.split('::') if x], inner)
            else:
                out.append(prefix + [x for x in p.split('as')[0].split('::') if x and x != 'self'])
    rec([], tree)
    return out
files = []
for root, _, fs in os.walk(src):
    for f in fs:
        if f.endswith('.rs'): files.append(os.path.join(root, f))
mods = {tuple(modpath(f)) for f in files}
edges = {}
for f in files:
    # main.rs and serve.rs belong to the binary, not the library
    if os.path.relpath(f, src) in ('main.rs', 'serve.rs'): continue
    me = modpath(f)
    text = strip(open(f).read())
    paths = []
    for m in re.finditer(r'\buse\s+([^;]+);', text):
        for p in expand_use(m.group(1)): paths.append(p)
    for m in re.finditer(r'\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)', text):
        paths.append([m.group(1)] + m.group(2).split('::')[1:])
    for p in paths:
        if not p: continue
        if p[0] == 'crate': target = p[1:]
        elif p[0] == 'super':
            base = me[:-1]; rest = p[1:]
            while rest and rest[0] == 'super': base = base[:-1]; rest = rest[1:]
            target = base + rest
        else: continue
        # longest prefix that is a module
        t = list(target)
        while t and tuple(t) not in mods: t.pop()
        a, b = tuple(me[:depth]), tuple(t[:depth])
        if not b or a == b or a[:len(b)] == b and len(b) < len(a) and False: continue
        if a == b: continue
        # a child using its parent module's items counts as an edge to the parent
        edges.setdefault(a, set()).add(b)
nodes = sorted({n for e in edges for n in [e, *edges[e]]})
name = lambda n: '::'.join(n) or 'crate'
for a in sorted(edges):
    print(f"{name(a):28} -> {', '.join(sorted(name(b) for b in edges[a]))}")
# Tarjan
idx, low, st, on, sccs, c = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
for v in nodes:
    if v not in idx: sc(v)
print()
if sccs:
    for comp in sccs: print("CIRCLE:", ', '.join(sorted(name(n) for n in comp)))
    sys.exit(1)
print("no circles")
