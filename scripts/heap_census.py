#!/usr/bin/env python3
"""
heap_census.py -- a census of a live CPython heap, written as a cowlab
workload (its generic "objects" section and one route), so that cowlab can
replay the application's heap and requests under every policy.

    python3 scripts/heap_census.py --import pkg.module[,...] [--path DIR]
        [--setup CODE] [--request MOD:FUNC] [--requests N] --out app.json
        [--report census.json]

Run it with the application's own interpreter (CPython >= 3.10, standard
library only, Linux for the request profile).  What it does, in order:

 1. imports the modules and runs --setup, as a preloading server's master
    would, then gc.collect() (import leaves garbage behind);
 2. with --request, forks a child that serves N requests and measures the
    request profile (before the scan below, which changes the heap);
 3. scans the heap: gc.get_objects() plus everything they reach that the
    collector does not track (str, int, float, bytes, code objects, tuples
    and dicts of atoms), through gc.get_referents() and code objects'
    constants and names.

How each figure is measured (README, "Model your own app", says the same):
  types       objects per kind: dict, list, tuple, set (and frozenset),
              instance (a heap type's instance with a __dict__), slots
              (every other object with references: __slots__ instances,
              cells, methods, descriptors...), function, class (heap
              types), code (code objects and bytes), str, int (outside
              the small-int cache), float (and complex).  Module dicts,
              class dicts and instance dicts are not counted as dicts: the
              builder makes them with their owner.  Static types, None,
              True/False, small ints are shared, not built.
  sizes       per kind, a power-of-two histogram: items (dict and class:
              entries; list, tuple, set: len; instance: attributes; slots:
              references) or bytes (str: sys.getsizeof minus an empty
              str's; code: sys.getsizeof of the code object or bytes)
  ref_container, ref_distance
              of the items of containers (dict values, list/tuple items,
              attributes, slot references), the share that refers to a
              container, and how far apart the two are in gc.get_objects()
              order (the collector's lists: allocation order, roughly)
  ref_shared  of the items that refer to an atom, the share that refers to
              one referred to before (1 - distinct atoms / references)
  interned    share of strs in the interned table (the state bits of the
              str header, read with ctypes)
  cycle_fraction, cycle_size
              strongly connected components of the tracked objects'
              references (Tarjan, iterative): objects in components of 2
              or more (or with a reference to themselves), over the lists,
              dicts and classes (the builder closes cycles through those,
              not instances); members by the size of their component
  modules     modules in sys.modules
  holds       per imported top-level package: objects reachable from its
              modules, and those reachable from no other module (report)
The request profile, in a child forked after setup (the collector off in
it, so that its copies are the requests' own):
  pages       pages of the pre-fork heap (private anonymous mappings)
              exclusively mapped in the child (pagemap bit 56: copied)
              after request 1, 2, 5, 10, ... N: the first request's pages
              P1 and the new pages per request at the end, s
  garbage     gc.collect() after the N requests: objects in cycles, per
              request
  retained    objects alive after n more requests and a collection minus
              before them, per request; a second n requests tell whether
              it is bounded (a cache that fills) or not
  promoted    with the collector on, n more requests: the survivors of
              each generation-1 collection (objects in generations 0 and
              1 at its start minus those it collected), per request: the
              objects that bring the first full collection
  temporaries tracemalloc's peak over the request minus its start, in
              bytes, divided by the census's mean container size
The route: reads = P1 / --pages-per-read, spread = the pages copied after
N requests over the pre-fork heap's pages (the part of the heap requests
touch at all), hot 0, walk_depth 1, walk_width 4,
temporaries, cyclic_garbage = garbage / 2 (cowlab leaves pairs), retain =
the larger of retained / 3 (cowlab's entries are 3 objects) and promoted
times the ratio of the objects cowlab's collector will hold for this heap
to those CPython's holds (an entry is one tracked object: its list),
retain_max from the bounded/unbounded test.  --pages-per-read is a calibration constant (how
many pages one of cowlab's reads writes): calibrate it on one request mix,
compare on another (make validate-app).

What the census cannot see: memory outside the object heap (C libraries'
malloc, sqlite's cache, buffers of extension modules, the interpreter's own
structures), objects no gc-tracked object refers to and no module holds
(C globals of extension modules), the sizes of CPython's objects (cowlab
builds its own layouts), which object a request reads (only the pages it
copies), and requests' effects on other processes (databases, caches).
"""

import argparse
import array
import gc
import importlib
import json
import os
import struct
import sys
import time
import types

PAGE = os.sysconf("SC_PAGESIZE")
NBUCKETS = 21                   # workloads' WL_HIST_MAX
KINDS = ("dict", "list", "tuple", "set", "instance", "slots", "function",
         "class", "code", "str", "int", "float")
SIZED = ("dict", "list", "tuple", "set", "instance", "slots", "class",
         "code", "str")
HEAPTYPE = 1 << 9               # Py_TPFLAGS_HEAPTYPE
WALK_WIDTH = 4


def die(msg):
    sys.stderr.write("heap_census: %s\n" % msg)
    sys.exit(2)


def log(msg):
    sys.stderr.write("heap_census: %s\n" % msg)


def bucket(n):
    """Power-of-two bucket of a size: 0 -> 0, 2^(k-1)..2^k-1 -> k."""
    return 0 if n <= 0 else min(n.bit_length(), NBUCKETS - 1)


def dbucket(d):
    """Bucket of a distance >= 1: 2^k..2^(k+1)-1 -> k."""
    return min(d.bit_length() - 1, NBUCKETS - 1)


def hist_out(h):
    """Trim a histogram's trailing zeros (at least one bucket)."""
    n = len(h)
    while n > 1 and h[n - 1] == 0:
        n -= 1
    return [float(x) for x in h[:n]] if any(h) else None


# ---- interning: the str header's state bits --------------------------------

def interned_reader():
    """A function str -> bool, or None where the layout is not the one
    checked here (then the share is left at the format's default)."""
    try:
        import ctypes
    except ImportError:
        return None
    off = 4 * struct.calcsize("P")      # refcnt, type, length, hash

    def state(s):
        return ctypes.c_uint32.from_address(id(s) + off).value & 3
    probe_in = sys.intern("heap_census_probe_interned")
    probe_out = "".join(["heap_census", "_probe_", "not_interned"])
    if state(probe_in) == 0 or state(probe_out) != 0:
        return None
    return lambda s: state(s) != 0


# ---- the heap's pages, for the request profile ------------------------------

def heap_ranges():
    """Private anonymous read-write mappings ([heap] and anonymous mmaps:
    pymalloc arenas, malloc), as (start, end) pairs."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            perms = parts[1]
            name = parts[5] if len(parts) > 5 else ""
            if not perms.startswith("rw") or perms[3] != "p":
                continue
            if name not in ("", "[heap]"):
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            out.append((lo, hi))
    return out


def exclusive_pages(ranges):
    """Pages of ranges present and exclusively mapped (pagemap bits 63 and
    56): in a forked child, those it has copied."""
    n = 0
    with open("/proc/self/pagemap", "rb") as f:
        for lo, hi in ranges:
            f.seek(lo // PAGE * 8)
            a = array.array("Q")
            a.frombytes(f.read((hi - lo) // PAGE * 8))
            for v in a:
                if v >> 63 and (v >> 56) & 1:
                    n += 1
    return n


def checkpoints(n):
    out, k = [], 1
    while k < n:
        for m in (1, 2, 5):
            if k * m < n:
                out.append(k * m)
        k *= 10
    out.append(n)
    return sorted(set(out))


def profile_child(fn, n, wfd):
    """In the forked child: serve n requests and write the profile (JSON)
    to wfd."""
    res = {"requests": n}
    try:
        gc.disable()
        ranges = heap_ranges()
        res["heap_pages"] = sum((hi - lo) // PAGE for lo, hi in ranges)
        base = exclusive_pages(ranges)
        cps = checkpoints(n)
        curve = {}
        t0 = time.perf_counter()
        for k in range(1, n + 1):
            fn()
            if k in cps:
                curve[k] = exclusive_pages(ranges) - base
        res["seconds"] = time.perf_counter() - t0
        res["pages"] = curve
        res["garbage"] = gc.collect()
        # Retained growth: objects alive after n more requests and a
        # collection, minus before; then again, to see if it is bounded.
        # (Counted apart from the pages: gc.get_objects() writes every
        # object's refcount.)
        before = len(gc.get_objects())
        for _ in range(n):
            fn()
        gc.collect()
        mid = len(gc.get_objects())
        for _ in range(n):
            fn()
        gc.collect()
        res["retained"] = mid - before
        res["retained2"] = len(gc.get_objects()) - mid
        # Objects promoted to the oldest generation per request (what
        # brings the first full collection: CPython collects generation 2
        # once those exceed a quarter of the objects it holds): the
        # survivors of each generation-1 collection, with the collector on.
        promoted = {"n": 0, "before": None}

        def count_promoted(phase, info):
            if info["generation"] != 1:
                return
            if phase == "start":
                promoted["before"] = (len(gc.get_objects(generation=0))
                                      + len(gc.get_objects(generation=1)))
            elif promoted["before"] is not None:
                promoted["n"] += promoted["before"] - info["collected"]
                promoted["before"] = None
        gc.collect()
        gc.callbacks.append(count_promoted)
        gc.enable()
        for _ in range(n):
            fn()
        gc.disable()
        gc.callbacks.remove(count_promoted)
        res["promoted"] = promoted["n"]
        import tracemalloc
        tracemalloc.start()
        peak = 0
        m = min(n, 20)
        for _ in range(m):
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            fn()
            peak += tracemalloc.get_traced_memory()[1] - start
        tracemalloc.stop()
        res["temp_bytes"] = peak / m
    except BaseException as e:          # reported by the parent
        res = {"error": "%s: %s" % (type(e).__name__, e)}
    os.write(wfd, json.dumps(res).encode())
    os.close(wfd)


def profile(fn, n):
    """Fork, let the child serve n requests, return its profile."""
    gc.collect()
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            profile_child(fn, n, wfd)
        finally:
            os._exit(0)
    os.close(wfd)
    chunks = []
    while True:
        b = os.read(rfd, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    try:
        res = json.loads(b"".join(chunks).decode() or "{}")
    except ValueError:
        res = {}
    if "error" in res:
        die("--request failed in the profile child: " + res["error"])
    if not res:
        die("the profile child died (wait status %d)" % status)
    res["pages"] = {int(k): v for k, v in res["pages"].items()}
    return res


# ---- the scan --------------------------------------------------------------

class Scan:
    def __init__(self):
        self.count = dict.fromkeys(KINDS, 0)
        self.size = {k: [0] * NBUCKETS for k in SIZED}
        self.raw = {}                   # type name -> objects
        self.refs_cont = 0
        self.refs_atom = 0
        self.dist = [0] * NBUCKETS
        self.atom_refd = set()
        self.strs = 0
        self.interned = 0
        self.cont_bytes = 0
        self.ncont = 0
        self.untracked = {"tuple": 0, "dict": 0}


def class_dict(cls):
    """A heap type's real attribute dict, through its mappingproxy."""
    try:
        proxy = type.__dict__["__dict__"].__get__(cls, type)
        for r in gc.get_referents(proxy):
            if type(r) is dict:
                return r
    except Exception:
        pass
    return None


def instance_dict(o):
    try:
        d = object.__getattribute__(o, "__dict__")
        return d if isinstance(d, dict) else None
    except Exception:
        return None


def code_refs(c):
    out = list(c.co_consts) + list(c.co_names) + list(c.co_varnames)
    out += [c.co_name, c.co_filename]
    return out


def kind_of(o, t):
    """The kind an object is built as, or None (shared: not built)."""
    if t is str:
        return "str"
    if t is int:
        return None if -5 <= o <= 256 else "int"
    if t is bool or o is None or o is Ellipsis or o is NotImplemented:
        return None
    if t is float or t is complex:
        return "float"
    if t is types.CodeType or t is bytes or t is bytearray:
        return "code"
    if isinstance(o, type):
        return "class" if o.__flags__ & HEAPTYPE else None
    if t is types.ModuleType or isinstance(o, types.ModuleType):
        return "module"
    if t is types.FunctionType:
        return "function"
    if isinstance(o, dict):
        return "dict"
    if isinstance(o, list):
        return "list"
    if isinstance(o, tuple):
        return "tuple"
    if isinstance(o, (set, frozenset)):
        return "set"
    if isinstance(o, str):
        return "str"
    if isinstance(o, int):
        return "int"
    if isinstance(o, float):
        return "float"
    if t.__flags__ & HEAPTYPE and t.__dictoffset__ != 0:
        return "instance"
    return "slots"


def scan(tracked, is_interned):
    """The census of every object from tracked, the list gc.get_objects()
    returned before this call (so that the scan's own state, made after,
    is not in it): a Scan and the modules."""
    s = Scan()
    mods = [m for m in list(sys.modules.values())
            if isinstance(m, types.ModuleType)]
    owned = set()                       # dicts built with their owner
    for m in mods:
        owned.add(id(m.__dict__))
    for o in tracked:
        k = kind_of(o, type(o))
        if k == "class":
            d = class_dict(o)
        elif k == "instance":
            d = instance_dict(o)        # 3.11+: may make the dict now
        else:
            continue
        if d is not None:
            owned.add(id(d))
    # Containers' positions: a tracked object's in gc.get_objects(), an
    # untracked container's that of the object it was found from.
    order = {id(o): n for n, o in enumerate(tracked)}
    seen = set()
    queue = []                          # containers to expand, in order
    empty_str = sys.getsizeof("")
    get_referents = gc.get_referents

    def visit_new(o):
        """First sight of o: count it; return its kind."""
        t = type(o)
        k = kind_of(o, t)
        s.raw[t.__name__] = s.raw.get(t.__name__, 0) + 1
        if k is None or k == "module":
            return k
        if k == "dict" and id(o) in owned:
            return "owned"
        s.count[k] += 1
        if k in ("tuple", "dict") and not gc.is_tracked(o):
            s.untracked[k] += 1
        if k == "str":
            s.strs += 1
            if is_interned is not None and is_interned(o):
                s.interned += 1
            s.size["str"][bucket(sys.getsizeof(o) - empty_str)] += 1
        elif k == "code":
            s.size["code"][bucket(sys.getsizeof(o))] += 1
        return k

    def item_ref(pos, r):
        """An item of the container at pos refers to r."""
        p = order.get(id(r))
        if p is not None:
            s.refs_cont += 1
            s.dist[dbucket(max(1, abs(pos - p)))] += 1
        elif id(r) in seen:
            k = kind_of(r, type(r))
            if k in ("str", "int", "float", "code"):
                s.refs_atom += 1
                s.atom_refd.add(id(r))

    def expand(o, k, pos):
        """Count o's items and size; queue what it reaches."""
        t = type(o)
        if k == "code":
            refs = code_refs(o) if t is types.CodeType else []
        else:
            refs = get_referents(o)
        items = None
        if k == "dict" or k == "owned":
            items = list(dict.values(o))
            if k == "dict":
                s.size["dict"][bucket(len(o))] += 1
        elif k == "list" or k == "tuple":
            items = refs
            s.size[k][bucket(len(o))] += 1
        elif k == "set":
            s.size["set"][bucket(len(o))] += 1
        elif k == "class":
            # its items are counted with its dict (an owned dict)
            d = class_dict(o)
            s.size["class"][bucket(len(d) if d is not None else 0)] += 1
        elif k == "instance":
            d = instance_dict(o)
            if d is not None:           # items: with the (owned) dict
                s.size["instance"][bucket(len(d))] += 1
                refs = refs + [d]
            else:
                items = [r for r in refs if r is not t]
                s.size["instance"][bucket(len(items))] += 1
        elif k == "slots":
            items = [r for r in refs if r is not t]
            s.size["slots"][bucket(len(items))] += 1
        if k not in ("str", "int", "float", "code", None):
            s.ncont += 1
            s.cont_bytes += sys.getsizeof(o)
        for r in refs:
            i = id(r)
            if i in seen:
                continue
            seen.add(i)
            rk = visit_new(r)
            if rk in ("str", "int", "float", None):
                continue
            if i not in order:
                order[i] = pos
            queue.append((r, rk))
        if items is not None:
            for r in items:
                item_ref(pos, r)

    for o in tracked:
        i = id(o)
        if i not in seen:
            seen.add(i)
            queue.append((o, visit_new(o)))
        while queue:
            q, k = queue.pop()
            expand(q, k, order[id(q)])
    return s, mods


def sccs(tracked):
    """The strongly connected components of the tracked objects'
    references (iterative Tarjan): the sizes of those of 2 or more
    members, and how many single objects refer to themselves."""
    idx = {id(o): n for n, o in enumerate(tracked)}
    get_referents = gc.get_referents
    n = len(tracked)
    index = [-1] * n
    low = [0] * n
    onstack = bytearray(n)
    selfref = bytearray(n)
    stack = []
    sizes = []
    selfs = 0
    counter = 0
    for root in range(n):
        if index[root] != -1:
            continue
        work = [(root, None)]
        while work:
            v, it = work[-1]
            if it is None:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                onstack[v] = 1
                succ = [idx[id(r)] for r in get_referents(tracked[v])
                        if id(r) in idx]
                if v in succ:
                    selfref[v] = 1
                it = iter(succ)
                work[-1] = (v, it)
            pushed = False
            for w in it:
                if index[w] == -1:
                    work.append((w, None))
                    pushed = True
                    break
                if onstack[w] and index[w] < low[v]:
                    low[v] = index[w]
            if pushed:
                continue
            work.pop()
            if work:
                u = work[-1][0]
                if low[v] < low[u]:
                    low[u] = low[v]
            if low[v] == index[v]:
                # After this, v's component is off the stack: every
                # member's low link is v's index.
                members = 0
                while True:
                    w = stack.pop()
                    onstack[w] = 0
                    members += 1
                    if w == v:
                        break
                if members > 1:
                    sizes.append(members)
                elif selfref[v]:
                    selfs += 1
    return sizes, selfs


def holds(prefixes, mods):
    """Per top-level package: objects reachable from its modules, and of
    those, how many no other module reaches."""
    def reach(roots):
        """Objects reachable from roots without passing through another
        module (sys.modules would reach everything)."""
        allowed = {id(m) for m in roots}
        seen = set()
        stack = list(roots)
        while stack:
            o = stack.pop()
            i = id(o)
            if i in seen:
                continue
            seen.add(i)
            if isinstance(o, types.ModuleType):
                if i in allowed:
                    stack.append(o.__dict__)
                continue
            stack.extend(gc.get_referents(o))
        return seen
    out = {}
    for p in prefixes:
        mine = [m for m in mods
                if m.__name__ == p or m.__name__.startswith(p + ".")]
        rest = [m for m in mods if m not in mine]
        a = reach(mine)
        b = reach(rest)
        out[p] = {"modules": len(mine), "reachable": len(a),
                  "only_from_it": len(a - b)}
    return out


# ---- the workload ----------------------------------------------------------

def route_from(prof, mean_bytes, pages_per_read, tracked_ratio):
    """The route that stands for the request callable (see the top of the
    file): reads from the first request's pages, the window they fall in
    from the pages all requests copy in the end."""
    n = prof["requests"]
    curve = prof["pages"]
    p1 = curve.get(1, 0)
    half = max(k for k in curve if k <= n // 2) if n >= 2 else 1
    s = (curve[n] - curve[half]) / max(1, n - half)
    spread = curve[n] / prof["heap_pages"] if prof["heap_pages"] else 1.0
    spread = min(1.0, max(0.01, spread))
    retained = max(0, prof["retained"]) / n
    bounded = prof["retained2"] <= max(3, prof["retained"] * 0.1)
    # cowlab's cache entries are what its requests promote to the old
    # generation: an entry is 3 objects, of which the collector tracks one
    # (the list), so one entry per object CPython promotes, scaled by how
    # many more objects cowlab's collector will hold for this heap
    # (tracked_ratio): the first full collection then comes after as many
    # requests.  Or, if more, the net growth in entries of 3 objects.
    promoted = max(0, prof.get("promoted", 0)) / n * tracked_ratio
    route = {
        "path": "/",
        "reads": int(round(p1 / pages_per_read)),
        "spread": round(spread, 4),
        "offset": 0.0,
        "hot": 0.0,
        "walk_depth": 1,
        "walk_width": WALK_WIDTH,
        "temporaries": int(round(prof["temp_bytes"] / mean_bytes)),
        "cyclic_garbage": int(prof["garbage"] / n / 2 + 0.5),
        "retain": int(max(retained / 3, promoted) + 0.5),
        "retain_max": (max(1, int(retained * n / 3 + 0.5))
                       if bounded else 1000000),
        "response_items": 10,
    }
    return route, {"p1_pages": p1, "final_pages": curve[n],
                   "new_pages_per_request": s,
                   "retained_per_request": retained,
                   "retained_bounded": bounded,
                   "promoted_per_request": promoted,
                   "tracked_ratio": tracked_ratio}


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="heap_census.py",
        description="Census of a live CPython heap, written as a cowlab "
                    "workload (objects section + a route).")
    ap.add_argument("--import", dest="imports", required=True,
                    metavar="MOD[,MOD...]",
                    help="modules to import first, as the app's master")
    ap.add_argument("--path", action="append", default=[], metavar="DIR",
                    help="prepend DIR to sys.path (repeatable)")
    ap.add_argument("--setup", metavar="CODE",
                    help="Python code run after the imports")
    ap.add_argument("--request", metavar="MOD:FUNC",
                    help="a callable serving one request (profile)")
    ap.add_argument("--requests", type=int, default=200, metavar="N",
                    help="requests the profile child serves [200]")
    ap.add_argument("--pages-per-read", type=float, default=3.0,
                    metavar="X", help="pages one cowlab read copies, the "
                    "calibration constant of the reads [3.0]")
    ap.add_argument("--name", help="workload name [from --out]")
    ap.add_argument("--no-cycles", action="store_true",
                    help="skip the strongly connected components")
    ap.add_argument("--out", required=True, metavar="FILE",
                    help="the workload JSON to write")
    ap.add_argument("--report", metavar="FILE",
                    help="also write the raw figures (JSON)")
    a = ap.parse_args(argv)
    if a.requests < 2 or a.requests > 1000000:
        ap.error("--requests: expected 2 to 1000000, got %d" % a.requests)
    if not a.pages_per_read > 0:
        ap.error("--pages-per-read: expected a number > 0")
    if a.request and ":" not in a.request:
        ap.error("--request: expected MOD:FUNC, got %r" % a.request)
    return a


def name_ok(name):
    return 0 < len(name) <= 64 and all(
        c.isalnum() or c in "._-" for c in name) and name.isascii()


def main(argv):
    a = parse_args(argv)
    if sys.version_info < (3, 10):
        die("CPython >= 3.10 needed, this is %s" % sys.version.split()[0])
    is_interned = interned_reader()     # imports ctypes before the app
    for p in reversed(a.path):
        sys.path.insert(0, os.path.abspath(p))
    t0 = time.perf_counter()
    mods = [m for m in a.imports.split(",") if m]
    for m in mods:
        try:
            importlib.import_module(m)
        except Exception as e:
            die("--import %s: %s: %s" % (m, type(e).__name__, e))
    if a.setup:
        try:
            exec(compile(a.setup, "<--setup>", "exec"), {})
        except Exception as e:
            die("--setup: %s: %s" % (type(e).__name__, e))
    fn = None
    if a.request:
        mname, _, fname = a.request.partition(":")
        try:
            fn = getattr(importlib.import_module(mname), fname)
        except Exception as e:
            die("--request %s: %s: %s" % (a.request, type(e).__name__, e))
        if not callable(fn):
            die("--request %s: not callable" % a.request)
    gc.collect()
    t_import = time.perf_counter() - t0
    prof = profile(fn, a.requests) if fn is not None else None
    t1 = time.perf_counter()
    if is_interned is None:
        log("the str header is not the one expected: 'interned' left at "
            "its default")
    tracked = gc.get_objects()
    s, modlist = scan(tracked, is_interned)
    if a.no_cycles:
        comps, selfs = [], 0
    else:
        comps, selfs = sccs(tracked)
    held = holds(sorted({m.split(".")[0] for m in mods}), modlist)
    t_scan = time.perf_counter() - t1

    count = dict(s.count)
    # The builder makes a class's interned name itself.
    count["str"] = max(0, count["str"] - count["class"])
    if count["function"] > 0 and count["code"] == 0:
        count["code"] = 1
    # The builder closes cycles through lists, dicts and classes (an
    # instance's attributes live in its class's shared keys, which may not
    # take one more name): the members over those kinds.
    mutable = count["list"] + count["dict"] + count["class"]
    in_cycles = sum(comps) + selfs
    cyc_hist = [0] * NBUCKETS
    for m in comps:
        cyc_hist[bucket(m)] += m        # members, by their cycle's size
    if selfs:
        cyc_hist[1] += selfs
    refs = s.refs_cont + s.refs_atom
    objects = {
        "modules": max(1, len(modlist)),
        "types": count,
        "sizes": {},
        "interned": round(s.interned / s.strs, 4)
        if is_interned is not None and s.strs else 0.2,
        "ref_container": round(s.refs_cont / refs, 4) if refs else 0.0,
        "ref_shared": round(1 - len(s.atom_refd) / s.refs_atom, 4)
        if s.refs_atom else 0.0,
        "cycle_fraction": round(min(1.0, in_cycles / mutable), 4)
        if mutable else 0.0,
    }
    for k in SIZED:
        h = hist_out(s.size[k])
        if h is not None:
            objects["sizes"][k] = h
    h = hist_out(s.dist)
    if h is not None:
        objects["ref_distance"] = h
    h = hist_out(cyc_hist)
    if h is not None:
        objects["cycle_size"] = h
    mean_bytes = s.cont_bytes / s.ncont if s.ncont else 64.0
    extra = {}
    # Objects cowlab's collector will hold for this heap over those
    # CPython's holds: every object of a kind the runtime tracks, less the
    # tuples and dicts CPython had untracked (the runtime untracks them
    # too), plus the instance dicts CPython had not made and each module's
    # roots list.
    est = (count["list"] + count["set"] + count["slots"]
           + count["function"] + 2 * count["class"] + 2 * count["instance"]
           + count["tuple"] - s.untracked["tuple"]
           + count["dict"] - s.untracked["dict"] + 3 * len(modlist))
    tracked_ratio = est / len(tracked) if tracked else 1.0
    if prof is not None:
        route, extra = route_from(prof, mean_bytes, a.pages_per_read,
                                  tracked_ratio)
    else:
        route = {"path": "/", "reads": 0}
    name = a.name or os.path.splitext(os.path.basename(a.out))[0]
    if not name_ok(name):
        die("--name %r: expected 1 to 64 letters, digits, '.', '_' or '-'"
            % name)
    total = sum(count.values())
    wl = {
        "name": name,
        "description": "heap census of %s under Python %s: %d objects"
                       % (a.imports, sys.version.split()[0], total),
        "objects": objects,
        "routes": [route],
    }
    with open(a.out, "w") as f:
        json.dump(wl, f, indent=2)
        f.write("\n")
    report = {
        "python": sys.version.split()[0],
        "imports": mods,
        "import_seconds": round(t_import, 3),
        "scan_seconds": round(t_scan, 3),
        "tracked": len(tracked),
        "objects": total,
        "kinds": count,
        "raw_types": dict(sorted(s.raw.items(), key=lambda x: -x[1])[:40]),
        "components": len(comps),
        "largest_component": max(comps) if comps else 0,
        "objects_in_cycles": in_cycles,
        "mean_container_bytes": round(mean_bytes, 1),
        "holds": held,
        "profile": prof,
        "route_inputs": extra,
        "tracked_ratio": round(tracked_ratio, 4),
    }
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=2, default=str)
            f.write("\n")
    log("%s: %d objects (%d tracked), %d modules, %d in cycles (largest "
        "component %d), interned %s; import %.1f s, scan %.1f s"
        % (a.out, total, len(tracked), len(modlist), in_cycles,
           report["largest_component"], objects["interned"], t_import,
           t_scan))
    for p, v in held.items():
        log("%s holds %d objects (%d reachable from no other module) in "
            "%d modules" % (p, v["reachable"], v["only_from_it"],
                            v["modules"]))
    if prof is not None:
        log("request profile (%d requests): first request copied %d "
            "pages, then %.1f new pages per request; %.1f garbage, %.1f "
            "retained objects per request; %.0f bytes of temporaries"
            % (prof["requests"], extra["p1_pages"],
               extra["new_pages_per_request"], prof["garbage"]
               / prof["requests"], extra["retained_per_request"],
               prof["temp_bytes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
