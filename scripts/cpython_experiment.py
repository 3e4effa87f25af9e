#!/usr/bin/env python3
"""
cpython_experiment.py -- the cowlab experiment run with CPython itself, to
check the model against the real thing.  Standard library (ctypes
included) and a C compiler for a 20-line marker; Linux; CPython 3.11 or
3.12 (64-bit).

Same shape as scripts/runner.py, without HTTP:
    master: build a web app's heap from the same workload JSON, object for
        object as workloads/webapp.c does and in the same order (modules
        with globals, classes with method dicts, functions with their own
        code objects, interned identifiers, settings dicts of atoms, model
        classes with field instances that point back at them and __slots__
        twins, instances with inline attributes or slots, URL tuples,
        template trees), apply the policy, snapshot which pages of its
        anonymous memory are present (/proc/self/pagemap), fork W workers
    worker: REQUESTS "requests" in a loop, cycling the workload's routes: the
        same reads (the model's walk: refcount writes on the object and on
        the first walk_width objects its tp_traverse visits, called through
        ctypes), temporaries, cyclic garbage, retained cache entries and a
        JSON response; then waits, and exits by the policy
    sampler: a process forked *before* the heap is built (so it shares none
        of it and its own allocations copy nothing) samples every worker
        from /proc/PID/smaps_rollup, /proc/PID/stat and /proc/PID/pagemap
        and writes samples.csv, with the columns of the server's samples.csv
The app's index (what a request picks from) is an array of addresses, as
the model's is malloc()ed memory holding no references: a list would hold
one to every object, and its teardown would write every refcount.

Policies, as CPython spells them:
    default          GC on (700, 10, 10); the collector runs during the build
                     as during an import (--prefork-gc import), or is paused
                     and a gc.collect() ends the build (collected)
    gc-off           gc.set_threshold(0) before the build
    freeze           default, then gc.freeze() before fork
    lazy             the heap is built in each worker after fork
    freeze+immortal  not available: CPython has no call that makes existing
                     objects immortal (PEP 683, 3.12, immortalizes only
                     static objects and interned strings); reported as n/a
Exit policies: finalize = sys.exit(0) in the worker (Py_FinalizeEx: modules
cleared, collections, deallocation), skip = os._exit(0).

Definitions that differ from the server's, because CPython has no hooks:
    heap_pages       pages of the master's private anonymous mappings
                     ([heap] and anonymous mmaps: pymalloc arenas, malloc)
                     present at fork that were not present before the build
                     (the interpreter's own memory is not the app's heap),
                     less the harness's index arrays
    heap_copied_pages  of those, present and exclusively mapped (pagemap
                     bit 56) in the worker: the same test as the server's;
                     heap_released_pages: those no longer present
    teardown_ms      from the worker's decision to exit to the end of
                     Py_FinalizeEx (a Py_AtExit marker), as the server times
                     its own finalize; teardown_exit_ms is the same to
                     wait4(), the kernel's exit included.  Py_Finalize also
                     tears down the interpreter's own modules, which the
                     model has not: a fixed cost of some tens of ms
    rps, p50_ms, p99_ms  requests per second over the workers' loops and
                     percentiles of the in-process service time: no HTTP,
                     no queueing, not comparable with wrk's figures
    fork_long_lived_pending/total  read from the interpreter's gc state
                     through ctypes (CPython does not publish them)
Output: OUT/samples.csv, OUT/runs.csv (the server's columns plus extras),
OUT/cells/<run_id>/meta.json.  --sizes prints the build's bytes by type.

--validate, for each of --versions (3.11, 3.12): finds the interpreter
(pythonX.Y on PATH or in pyenv; a missing one is reported as skipped), runs
the model (scripts/runner.py --python X.Y) and this script on the same
matrix, the bytes by type on both sides, and prints them side by side with
the difference per figure and the targets met or missed
(OUT/comparison.txt, OUT/comparison.csv, OUT/<version>/...).
"""

import _ctypes
import argparse
import array
import csv
import ctypes
import datetime
import gc
import json
import mmap
import os
import platform
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PAGE = os.sysconf("SC_PAGESIZE")

SAMPLE_COLUMNS = [
    "run_id", "policy", "worker", "pid", "t_ms", "requests", "rss_kb",
    "pss_kb", "shared_clean_kb", "shared_dirty_kb", "private_clean_kb",
    "private_dirty_kb", "minflt", "majflt", "heap_pages",
    "heap_copied_pages", "heap_shared_pct", "gc_collections_0",
    "gc_collections_1", "gc_collections_2", "gc_time_us", "faults_gc",
    "faults_request", "faults_other", "heap_released_pages"]
RUN_COLUMNS = [
    "run_id", "policy", "workers", "heap_objects", "heap_mb", "build_ms",
    "fork_ms", "requests", "rps", "p50_ms", "p99_ms", "heap_shared_pct",
    "private_dirty_kb", "teardown_ms", "faults_teardown", "exit", "scale",
    "workload", "gc", "gc_threshold", "freeze", "immortal", "lazy",
    "respawns", "duration_s",
    # extras (as in the runner's runs.csv where the name is the same)
    "p90_ms", "p999_ms", "requests_per_worker", "worker_requests_min",
    "worker_requests_max", "pss_kb", "master_pss_kb", "total_pss_kb",
    "rss_kb", "minflt", "faults_gc", "faults_request", "faults_other",
    "gc_collections_0", "gc_collections_1", "gc_collections_2", "gc_time_us",
    "gc_tracked", "python", "status",
    # as the server's runs.csv appends them
    "prefork_gc", "fork_gc_count_0", "fork_gc_count_1", "fork_gc_count_2",
    "fork_long_lived_pending", "fork_long_lived_total",
    "first_full_gc_request", "workers_full_gc", "heap_released_pages",
    "copied_by_teardown",
    # CPython's only
    "teardown_exit_ms", "teardown_timed"]

POLICIES = ["default", "gc-off", "freeze", "freeze+immortal", "lazy"]
AVAILABLE = {"default", "gc-off", "freeze", "lazy"}
EXITS = ["finalize", "skip"]

# ---- shared slots -------------------------------------------------------
# One 24 x uint64 slot per worker in a MAP_SHARED mapping made before any
# fork; a worker writes only its own (F_TFIN, F_MINFIN: right after it, as
# the marker writes them: time, then minor faults).
F_STATE, F_PID, F_REQ, F_GC0, F_GC1, F_GC2, F_GCUS, F_FGC, F_FREQ, \
    F_TEXIT, F_MINEXIT, F_OBJS, F_BUILDUS, F_T0, F_T1, F_TFIN, F_MINFIN, \
    F_FFULL = range(18)
SLOT = 24 * 8
ST_STARTING, ST_SERVING, ST_LOADED = 0, 1, 2


def sget(m, i, f):
    return struct.unpack_from("Q", m, i * SLOT + f * 8)[0]


def sput(m, i, f, v):
    struct.pack_into("Q", m, i * SLOT + f * 8, int(v))


def now_ns():
    return time.monotonic_ns()


def minflt_self():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# ---- the heap -----------------------------------------------------------

WORDS = ("get set user item order cart view model form field query cache "
         "auth token page list detail create update delete save load render "
         "parse init config session request response handler route url path "
         "admin api db sql json html static media log event task queue "
         "worker mail search index filter sort count price title status date "
         "time key value meta data type account profile group perm signal "
         "middleware").split()
NAMES = ["__name__", "__module__", "tag", "children", "name", "model",
         "column", "max_length", "_fields", "_instances", "urlpatterns",
         "TEMPLATES", "GET", "POST", "PUT", "DELETE", "id", "caches",
         "items", "type", "n", "temporaries"]
ALPHABET = "abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz etaoinsrh."
HEAP_DEFAULTS = {
    "interned_strings": 50000, "modules": 1500, "classes_per_module": 8,
    "methods_per_class": 8, "functions_per_module": 16,
    "constants_per_module": 24, "code_bytes": 160, "config_dicts": 400,
    "config_keys": 24, "url_patterns": 2000, "templates": 1000,
    "template_depth": 4, "template_fanout": 3, "models": 300,
    "fields_per_model": 12, "instances": 75000, "instance_attrs": 6,
    "slots_percent": 50}
ROUTE_DEFAULTS = {"reads": 0, "spread": 1.0, "offset": 0.0, "hot": 0.0,
                  "walk_depth": 1, "walk_width": 8, "temporaries": 0,
                  "cyclic_garbage": 0, "retain": 0, "retain_max": 10000,
                  "response_items": 10}


def _template(x=None, n=0):
    return x


def qual(name):
    return {"co_qualname": name} if sys.version_info >= (3, 11) else {}


class App:
    """The built heap, seen through addresses: index (every object a
    request may pick), hot set, pool.  The model keeps its index outside
    the heap, holding no references; so does this one (an array of
    addresses): a list would hold a reference to every object, and its
    teardown would write every refcount, which the model's does not."""


class Index:
    """Objects by address, in build order (array('Q')); the objects stay
    alive because the modules hold them, as in the model."""

    def __init__(self):
        self.addr = array.array("Q")

    def append(self, o):
        self.addr.append(id(o))

    def __len__(self):
        return len(self.addr)


def scaled(n, scale):
    if n <= 0:
        return 0
    return max(1, int(n * scale + 0.5))


def build_app(spec, scale, seed, sizes=None):
    """Build the heap as workloads/webapp.c does, with CPython objects and
    in the same order.  Everything hangs off sys.modules, so finalization
    reaches it.  sizes, if given, is a dict role -> [objects]: the builder
    counts what it makes by role (for --sizes)."""
    h = dict(HEAP_DEFAULTS, **spec.get("heap", {}))
    rng = random.Random(seed)
    app = App()
    index, hot = Index(), Index()
    keep = index.append
    base_code = _template.__code__

    names = {}
    for t in NAMES:
        s = sys.intern(t)
        names[t] = s
        keep(s)
        hot.append(s)
    npool = max(scaled(h["interned_strings"], scale),
                h["methods_per_class"], h["config_keys"],
                h["functions_per_module"] + h["constants_per_module"],
                h["fields_per_model"], h["instance_attrs"])
    pool = Index()
    # What keeps the identifiers alive: the model's interned table holds
    # references, 3.11's does not count its own (3.12 makes them immortal).
    pool_refs = []
    for i in range(npool):
        s = sys.intern("%s_%s_%d" % (rng.choice(WORDS), rng.choice(WORDS), i))
        pool.append(s)
        pool_refs.append(s)
        keep(s)
        if i < max(1, npool // 10):
            hot.append(s)
    pool_obj = _ctypes.PyObj_FromPtr

    def ident(i):
        return pool_obj(pool.addr[i % npool])

    def text(lo, hi):
        n = lo + rng.randrange(hi - lo + 1)
        s = "".join(rng.choice(ALPHABET) for _ in range(n))
        keep(s)
        return s

    def big_int():
        v = 1000 + rng.randrange(1000000000)
        keep(v)
        return v

    def module(name):
        m = types.ModuleType(name)
        sys.modules[name] = m
        keep(m)
        keep(m.__dict__)
        keep(m.__name__)
        hot.append(m)
        hot.append(m.__dict__)
        return m

    def function(fname, g, defaults):
        cb = h["code_bytes"]
        blob = rng.randbytes(cb // 2 + rng.randrange(cb + 1))
        code = base_code.replace(co_name=fname,
                                 co_consts=(blob,) + base_code.co_consts,
                                 **qual(fname))
        keep(blob)
        keep(code)
        f = types.FunctionType(code, g, fname, defaults)
        keep(f)
        if defaults is not None:
            keep(defaults)
        return f

    def cls(name, bases, ns):
        if bases:
            keep(bases)
        c = type(name, bases, ns)
        keep(c)
        keep(c.__name__)
        return c

    # libraries
    handlers = []
    serial = 0
    for i in range(scaled(h["modules"], scale)):
        m = module("lib.%s.%s_%d" % (rng.choice(WORDS), rng.choice(WORDS), i))
        g = m.__dict__
        kbase = rng.randrange(npool)
        first = None
        for j in range(h["classes_per_module"]):
            w1, w2 = rng.choice(WORDS), rng.choice(WORDS)
            cname = "%s%s%d" % (w1.capitalize(), w2.capitalize(), serial)
            serial += 1
            ns = {"__module__": m.__name__}
            f0 = rng.randrange(npool)
            for k in range(h["methods_per_class"]):
                fname = ident(f0 + k)
                ns[fname] = function(fname, g, (None, k % 256)
                                     if k % 3 == 2 else None)
            c = cls(cname, (first,) if first is not None else (), ns)
            g[c.__name__] = c
            if first is None:
                first = c
        for j in range(h["functions_per_module"]):
            fname = ident(kbase + j)
            f = function(fname, g, None)
            handlers.append(id(f))
            g[fname] = f
        for j in range(h["constants_per_module"]):
            key = ident(kbase + h["functions_per_module"] + j)
            if j % 3 == 0:
                g[key] = big_int()
            elif j % 3 == 1:
                g[key] = text(4, 40)
            else:
                v = rng.random() * 1e3
                keep(v)
                g[key] = v
    # settings: dicts of atoms (untracked)
    m = module("app.settings")
    for i in range(scaled(h["config_dicts"], scale)):
        kbase = rng.randrange(npool)
        d = {}
        keep(d)
        hot.append(d)
        for k in range(h["config_keys"]):
            r = k % 4
            if r == 0:
                v = text(4, 40)
            elif r == 1:
                v = big_int()
            elif r == 2:
                v = rng.random()
                keep(v)
            else:
                v = None if rng.randrange(3) == 0 else bool(rng.randrange(2))
            d[ident(kbase + k)] = v
        key = sys.intern("SETTING_%d" % i)
        keep(key)
        hot.append(key)
        m.__dict__[key] = d
    # models
    m = module("app.models")
    g = m.__dict__
    mname = m.__name__
    field = cls("Field", (), {"__module__": mname})
    g["Field"] = field
    kinds = []
    for kname in ("CharField", "IntegerField", "ForeignKey", "DateTimeField"):
        k = cls(kname, (field,), {"__module__": mname})
        g[kname] = k
        kinds.append(k)
    model = cls("Model", (), {"__module__": mname})
    slot_model = cls("SlotModel", (), {"__module__": mname, "__slots__": ()})
    g["Model"] = model
    g["SlotModel"] = slot_model
    nattr = h["instance_attrs"]
    models = []
    for i in range(scaled(h["models"], scale)):
        w1, w2 = rng.choice(WORDS), rng.choice(WORDS)
        cname = "%s%s%d" % (w1.capitalize(), w2.capitalize(), i)
        fbase = rng.randrange(npool)
        fields = []
        keep(fields)
        c = cls(cname, (model,), {"__module__": mname, "_fields": fields})
        attrs = [ident(fbase + k) for k in range(nattr)]
        sc = cls(cname + "Slots", (slot_model,),
                 {"__module__": mname, "__slots__": tuple(attrs)})
        for k in range(h["fields_per_model"]):
            fname = ident(fbase + k)
            fld = kinds[k % 4]()
            keep(fld)
            fld.name = fname
            fld.model = c                           # the cycle
            col = "%s_%s" % (cname, fname)
            keep(col)
            fld.column = col
            fld.max_length = 255
            fields.append(fld)
            setattr(c, fname, fld)
        insts = []
        keep(insts)
        c._instances = insts
        g[cname] = c
        g[sc.__name__] = sc
        models.append((c, sc, attrs, insts))
    made = []
    nmod = len(models)
    for i in range(scaled(h["instances"], scale) if nmod else 0):
        c, sc, attrs, insts = models[i % nmod]
        slotted = (i % 100) < h["slots_percent"]
        o = (sc if slotted else c)()
        keep(o)
        for k in range(nattr):
            r = k % 4
            if r == 0:
                v = big_int()
            elif r == 1:
                v = text(3, 24)
            elif r == 2:
                v = ident(rng.randrange(npool))
            else:
                v = made[rng.randrange(i)] if i > 0 else None
            setattr(o, attrs[k], v)
        insts.append(o)
        made.append(o)
    del made, models, attrs
    # urls
    m = module("app.urls")
    urls = []
    keep(urls)
    hot.append(urls)
    m.__dict__["urlpatterns"] = urls
    other = {1: "POST", 3: "PUT"}
    for i in range(scaled(h["url_patterns"], scale)):
        p = "^%s/%s/(?P<%s_id>[0-9]+)/%d/$" % (
            rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS), i)
        meth = (("GET",) if i % 2 == 0 else
                ("GET", other.get(i % 4, "DELETE")))
        hd = (_ctypes.PyObj_FromPtr(handlers[rng.randrange(len(handlers))])
              if handlers else None)
        t = (p, hd, meth)
        for o in (t, p, meth):
            keep(o)
            hot.append(o)
        urls.append(t)
    # templates
    m = module("app.templates")
    tl = []
    keep(tl)
    m.__dict__["TEMPLATES"] = tl

    def node(d):
        if d == h["template_depth"]:
            return text(8, 80)
        n = {"tag": ident(rng.randrange(npool))}
        keep(n)
        kids = []
        keep(kids)
        n["children"] = kids
        for _ in range(h["template_fanout"]):
            kids.append(node(d + 1))
        return n
    for i in range(scaled(h["templates"], scale)):
        tl.append(node(0))
    app.index = index
    app.hot = hot
    app.pool = pool
    app.pool_refs = pool_refs
    app.npool = npool
    app.names = names
    app.routes = [dict(ROUTE_DEFAULTS, **r) for r in spec["routes"]]
    app.caches = None
    app.serial = 0
    sys.modules["app.state"] = module_holding(app)
    return app


def list_items(lst):
    """Address of a list's item array (PyListObject.ob_item)."""
    return ctypes.c_void_p.from_address(id(lst) + 24).value


def module_holding(app):
    m = types.ModuleType("app.state")
    m.app = app
    return m


# ---- a request --------------------------------------------------------------
#
# A read is the model's walk (workloads/wl_request.c): incref the object,
# incref/decref the first walk_width objects its tp_traverse visits (and, at
# walk_depth 2, the first walk_width of each of theirs), decref it.  The
# traversal is CPython's own tp_traverse, called through ctypes and stopped
# after walk_width visits, as the model's traverse stops: gc.get_referents()
# would touch every referent (a module dict's hundred values), not the
# first walk_width.  Only GC objects are traversed (CPython's code objects
# and static types have nothing to give), as get_referents does.

VISITPROC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
TRAVERSEPROC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, VISITPROC,
                                ctypes.c_void_p)
TP_FLAGS, TP_TRAVERSE = 168, 184        # offsets in PyTypeObject (64-bit)
HAVE_GC, HEAPTYPE = 1 << 14, 1 << 9


class Walker:
    def __init__(self):
        self.trav = {}                  # type address -> traverse or None
        self.width = 0
        self.seen = 0
        self.kids = []
        self.touched = 0
        self.visit = VISITPROC(self._visit)
        self.obj = _ctypes.PyObj_FromPtr
        tp = type(self)
        assert ctypes.c_ssize_t.from_address(id(tp) + 32).value \
            == tp.__basicsize__, "PyTypeObject layout"

    def _visit(self, addr, arg):
        if self.seen >= self.width:
            return 1
        self.seen += 1
        o = self.obj(addr)              # incref
        self.kids.append(o)             # decref'd when the walk is done
        return 0

    def traverse_of(self, o):
        t = type(o)
        ta = id(t)
        f = self.trav.get(ta, 0)
        if f == 0:
            flags = ctypes.c_ulong.from_address(ta + TP_FLAGS).value
            fp = ctypes.c_void_p.from_address(ta + TP_TRAVERSE).value
            f = TRAVERSEPROC(fp) if fp and flags & HAVE_GC else None
            self.trav[ta] = f
        if f is not None and t is type and not o.__flags__ & HEAPTYPE:
            return None                 # a static type: not GC
        return f

    def children(self, o, width):
        f = self.traverse_of(o)
        if f is None or width <= 0:
            return []
        self.width, self.seen, self.kids = width, 0, []
        f(id(o), self.visit, None)
        kids = self.kids
        self.kids = []
        return kids

    def walk(self, o, depth, width):
        self.touched += 1
        if depth >= 1:
            for c in self.children(o, width):
                self.touched += 1
                if depth >= 2:
                    self.touched += len(self.children(c, width))


def handle(app, ri, rng, walker):
    r = app.routes[ri]
    idx = app.index.addr
    n = len(idx)
    span = max(1, min(n, int(r["spread"] * n)))
    off = min(int(r["offset"] * n), n - span)
    hot, nhot, hotp = app.hot.addr, len(app.hot.addr), r["hot"]
    depth, width = r["walk_depth"], r["walk_width"]
    items = r["response_items"]
    obj = _ctypes.PyObj_FromPtr
    picked = []
    rand = rng.random
    for _ in range(r["reads"]):
        if hotp > 0 and rand() < hotp:
            o = obj(hot[int(rand() * nhot)])
        else:
            o = obj(idx[off + int(rand() * span)])
        walker.walk(o, depth, width)
        if len(picked) < items:
            picked.append(o)
        del o
    tmp = None
    if r["temporaries"] > 0:
        tmp = []
        pool, npool = app.pool.addr, app.npool
        for k in range(1, r["temporaries"]):
            ident = obj(pool[int(rand() * npool)])
            tmp.append({"id": k % 256, "name": ident} if k % 2
                       else [ident, k % 256])
    for _ in range(r["cyclic_garbage"]):
        a = []
        b = [a]
        a.append(b)
    if r["retain"] > 0 and r["retain_max"] > 0:
        if app.caches is None:          # made in the worker, once
            mod = types.ModuleType("wl.worker_cache")
            sys.modules["wl.worker_cache"] = mod
            app.caches = mod.caches = [[] for _ in app.routes]
            app.ring = [0] * len(app.routes)
        cache = app.caches[ri]
        mx = r["retain_max"]
        for _ in range(r["retain"]):
            app.serial += 1
            e = ["c%d" % app.serial, 1000 + app.serial % 1000000000]
            if len(cache) < mx:
                cache.append(e)
            else:
                cache[app.ring[ri]] = e
                app.ring[ri] = (app.ring[ri] + 1) % mx
    body = json.dumps({"items": [{"type": type(o).__name__, "n": i}
                                 for i, o in enumerate(picked)],
                       "temporaries": r["temporaries"]})
    del tmp, picked
    return len(body)


# ---- /proc ------------------------------------------------------------------

def smaps_rollup(pid):
    out = {}
    try:
        with open("/proc/%s/smaps_rollup" % pid) as f:
            for line in f:
                p = line.split()
                if len(p) >= 3 and p[-1] == "kB":
                    out[p[0].rstrip(":")] = int(p[1])
    except OSError:
        return None
    return out


def proc_stat(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[7]), int(rest[9])          # minflt, majflt


# The top byte of a pagemap entry holds bits 56..63: 0x80 = present (63),
# 0x01 = exclusively mapped (56).  These tables turn it into 0/1 bytes.
PRESENT = bytes(1 if v & 0x80 else 0 for v in range(256))
EXCLUSIVE = bytes(1 if v & 0x81 == 0x81 else 0 for v in range(256))


def present_pages():
    """The set of present pages of this process's private anonymous
    mappings (page numbers)."""
    out = set()
    for first, present in snapshot_pages()[0]:
        out.update(first + i for i, v in enumerate(present) if v)
    return out


def snapshot_pages(exclude=(), before=None):
    """Present pages of this process's private anonymous mappings:
    [(first_page, bytes of 0/1 presence)], and the count.  Pages wholly
    inside an exclude range (start, end) are left out: the harness's own
    index arrays, which the model keeps outside its heap; and so are the
    pages in before (present_pages() taken before the build): the
    interpreter's own memory, which is not the app's heap."""
    ranges = []
    with open("/proc/self/maps") as f:
        maps = f.read().splitlines()
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    total = 0
    skip = [((lo + PAGE - 1) // PAGE, hi // PAGE) for lo, hi in exclude]
    try:
        for line in maps:
            p = line.split()
            perms = p[1]
            path = p[5] if len(p) >= 6 else ""
            if perms[0] != "r" or perms[1] != "w" or perms[3] != "p":
                continue
            if path not in ("", "[heap]"):
                continue
            lo, hi = (int(x, 16) for x in p[0].split("-"))
            first, n = lo // PAGE, (hi - lo) // PAGE
            top = os.pread(fd, n * 8, first * 8)[7::8]  # bits 56..63
            present = bytearray(top.translate(PRESENT))
            for s0, s1 in skip:
                for pg in range(max(s0, first), min(s1, first + n)):
                    present[pg - first] = 0
            if before:
                for pg in before:
                    if first <= pg < first + n:
                        present[pg - first] = 0
            present = bytes(present)
            k = present.count(1)
            if k:
                ranges.append((first, present))
                total += k
    finally:
        os.close(fd)
    return ranges, total


def count_copied(pid, ranges):
    """(copied, released): snapshot pages present and exclusively mapped
    (bit 56) in pid, and those no longer present there (given back: an
    arena freed, glibc's trim), which are neither shared nor copied."""
    try:
        fd = os.open("/proc/%d/pagemap" % pid, os.O_RDONLY)
    except OSError:
        return None
    n = gone = 0
    try:
        for first, present in ranges:
            top = os.pread(fd, len(present) * 8, first * 8)[7::8]
            if len(top) != len(present):
                return None
            was = int.from_bytes(present, "little")
            mine = int.from_bytes(top.translate(EXCLUSIVE), "little")
            now = int.from_bytes(top.translate(PRESENT), "little")
            n += bin(mine & was).count("1")
            gone += bin(was & ~now).count("1")
    except OSError:
        return None
    finally:
        os.close(fd)
    return n, gone


# ---- the collector's state, read from the interpreter ------------------------
#
# gc.get_count() is public; the long-lived rule's two counters are not.  They
# sit at the end of struct _gc_runtime_state (Include/internal/pycore_gc.h,
# the same in 3.11 and 3.12): ..., garbage, callbacks, long_lived_total,
# long_lived_pending.  gc.garbage and gc.callbacks are those two objects, so
# their addresses, side by side, find the struct inside the interpreter.

def gc_long_lived():
    """(pending, total), or (None, None) if the struct is not found."""
    try:
        get = ctypes.pythonapi.PyInterpreterState_Get
        get.restype = ctypes.c_void_p
        base = get()
        end = base + (1 << 20)
        with open("/proc/self/maps") as f:
            for line in f:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if lo <= base < hi:
                    end = min(end, hi)
                    break
        words = array.array("Q", ctypes.string_at(base, (end - base) & ~7))
        g, cb = id(gc.garbage), id(gc.callbacks)
        for i in range(len(words) - 3):
            if words[i] == g and words[i + 1] == cb:
                return words[i + 3], words[i + 2]
    except (OSError, ValueError, AttributeError):
        pass
    return None, None


# ---- Py_Finalize's end, seen from inside -------------------------------------
#
# The model times what Py_Finalize does, not the kernel's unmapping at exit.
# To time the same in CPython, a worker registers a C function with
# Py_AtExit(): Py_FinalizeEx calls it at its very end (call_ll_exitfuncs),
# and it writes the time and the minor faults into the worker's slot.  It
# is compiled here (a C compiler is a build requirement); without one the
# teardown is timed from outside, kernel exit included, and says so.

MARK_C = r"""
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>
static volatile uint64_t *slot;
static int stop;
void cowlab_mark_arm(volatile uint64_t *p, int stop_after)
{
    slot = p;
    stop = stop_after;
}
void cowlab_mark(void)
{
    struct timespec ts;
    struct rusage ru;
    if (!slot)
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    getrusage(RUSAGE_SELF, &ru);
    slot[1] = (uint64_t)ru.ru_minflt;
    slot[0] = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (stop)
        raise(SIGSTOP);     /* the master reads our pagemap, then SIGCONT */
}
"""


def build_marker(folder):
    """The marker library's path, or None if it cannot be compiled."""
    src = os.path.join(folder, "cowlab_mark.c")
    lib = os.path.join(folder, "cowlab_mark.so")
    try:
        with open(src, "w") as f:
            f.write(MARK_C)
        r = subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC",
                            "-O2", "-o", lib, src], capture_output=True)
        return lib if r.returncode == 0 else None
    except OSError:
        return None


def arm_marker(path, slots, i, stop=0):
    lib = ctypes.CDLL(path)
    # The slots mapping must outlive Py_Finalize (which would free the mmap
    # object and unmap it): a reference nobody drops keeps it.
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(slots))
    base = ctypes.addressof(ctypes.c_char.from_buffer(slots))
    lib.cowlab_mark_arm(ctypes.c_void_p(base + i * SLOT + F_TFIN * 8),
                        ctypes.c_int(stop))
    atexit = ctypes.pythonapi.Py_AtExit
    atexit.argtypes = [ctypes.c_void_p]
    return atexit(ctypes.cast(lib.cowlab_mark, ctypes.c_void_p)) == 0


# ---- one cell (run in a fresh interpreter) ----------------------------------

def cell_main(a):
    spec = json.loads(a.spec_json)
    W = a.workers
    slots = mmap.mmap(-1, SLOT * W)             # MAP_SHARED | MAP_ANONYMOUS
    os.makedirs(a.cell_dir, exist_ok=True)
    to_sampler_r, to_sampler_w = os.pipe()
    from_sampler_r, from_sampler_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    sampler = os.fork()
    if sampler == 0:                            # before the heap: shares none
        os.close(to_sampler_w)
        os.close(from_sampler_r)
        try:
            sampler_main(a, slots, to_sampler_r, from_sampler_w)
        finally:
            os._exit(0)
    os.close(to_sampler_r)
    os.close(from_sampler_w)

    policy = a.policy
    # The pre-fork state (--prefork-gc): "import" lets the collector run by
    # its thresholds all along the build, as an import does; "collected"
    # pauses it and ends with a full collection.  gc-off: threshold 0
    # before the build, nothing collected either way.
    if policy == "gc-off":
        gc.set_threshold(0)
    elif a.prefork_gc == "collected":
        gc.disable()
    app = None
    before = present_pages() if policy != "lazy" else None
    t0 = now_ns()
    if policy != "lazy":
        app = build_app(spec, a.scale, 42)
        if policy != "gc-off" and a.prefork_gc == "collected":
            gc.enable()
            gc.collect()
        if policy == "freeze":
            gc.freeze()
    build_ms = (now_ns() - t0) / 1e6
    fork_count = gc.get_count()
    fork_pending, fork_total = gc_long_lived()
    gc_tracked = len(gc.get_objects()) if app is not None else 0
    heap_objects = len(app.index) if app is not None else 0
    if policy != "lazy":
        exclude = []
        for ix in (app.index, app.hot, app.pool):
            addr, n = ix.addr.buffer_info()
            exclude.append((addr, addr + n * ix.addr.itemsize))
        items = list_items(app.pool_refs)
        exclude.append((items, items + 8 * len(app.pool_refs)))
        ranges, heap_pages = snapshot_pages(exclude, before)
    else:
        ranges, heap_pages = [], 0
    snap = os.path.join(a.cell_dir, "snapshot.bin")
    with open(snap, "wb") as f:
        for first, present in ranges:
            f.write(struct.pack("QQ", first, len(present)))
            f.write(present)
    go = []
    pids = []
    sys.stdout.flush()
    sys.stderr.flush()
    t_fork = now_ns()
    for i in range(W):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(w)
            for x in go:
                os.close(x)
            worker_main(a, spec, app, slots, i, r, t_fork)  # never returns
        os.close(r)
        go.append(w)
        pids.append(pid)
    fork_ms = (now_ns() - t_fork) / 1e6
    os.write(to_sampler_w, (json.dumps({"pids": pids, "t0": t_fork,
                                        "heap_pages": heap_pages,
                                        "snapshot": snap}) + "\n").encode())
    # Wait for the sampler's final sample (after every worker's load).
    # Nothing here touches the heap, so siblings' pages stay shared.
    os.read(from_sampler_r, 1)
    master_pss = (smaps_rollup(os.getpid()) or {}).get("Pss", "")
    teardown = {}
    for w in go:
        os.close(w)                             # go: exit by the policy
    sampler_done = False
    at_end = {}                 # worker: (copied, released) after finalize
    while len(teardown) < W:
        pid, status, ru = os.wait4(-1, os.WUNTRACED)
        t = now_ns()
        if os.WIFSTOPPED(status):
            # The marker stopped the worker at the end of Py_FinalizeEx:
            # what its teardown copied (or gave back) of the heap pages.
            if pid in pids and heap_pages:
                at_end[pids.index(pid)] = count_copied(pid, ranges)
            os.kill(pid, signal.SIGCONT)
            continue
        if pid in pids:
            i = pids.index(pid)
            t_exit, f_exit = sget(slots, i, F_TEXIT), sget(slots, i, F_MINEXIT)
            t_fin = sget(slots, i, F_TFIN)
            inside = t_fin >= t_exit > 0
            teardown[i] = {
                # inside: from the decision to Py_FinalizeEx's end (or to
                # os._exit); outside: to wait4(), the kernel's exit too
                "ms": ((t_fin if inside else t) - t_exit) / 1e6,
                "faults": ((sget(slots, i, F_MINFIN) if inside
                            else ru.ru_minflt) - f_exit),
                "exit_ms": (t - t_exit) / 1e6, "inside": inside,
                "status": status}
        elif pid == sampler:
            sampler_done = True
    if not sampler_done:
        os.waitpid(sampler, 0)
    # the figures of the run
    lat = []
    for i in range(W):
        p = os.path.join(a.cell_dir, "latency-%d.bin" % i)
        b = array.array("d")
        with open(p, "rb") as f:
            b.frombytes(f.read())
        os.unlink(p)
        lat.extend(b)
    lat.sort()

    def pct(q):
        return lat[min(len(lat) - 1, int(q / 100.0 * len(lat)))] * 1e3 \
            if lat else 0.0
    t_lo = min(sget(slots, i, F_T0) for i in range(W))
    t_hi = max(sget(slots, i, F_T1) for i in range(W))
    reqs = [sget(slots, i, F_REQ) for i in range(W)]
    ffull = [sget(slots, i, F_FFULL) for i in range(W)]
    ffull = [x for x in ffull if x]
    final = {}
    with open(os.path.join(a.cell_dir, "samples.csv")) as f:
        for row in csv.DictReader(f):
            final[row["worker"]] = row

    def fmean(col):
        v = [float(r[col]) for r in final.values() if r.get(col) != ""]
        return sum(v) / len(v) if v else ""
    pss = [float(r["pss_kb"]) for r in final.values()]
    if policy == "lazy":
        heap_objects = sget(slots, 0, F_OBJS)
        build_ms = sget(slots, 0, F_BUILDUS) / 1e3
    td = list(teardown.values())
    tdc = []
    for i, end in at_end.items():
        before = final.get(str(i))
        if end is not None and before is not None:
            tdc.append(max(0, end[0] + end[1]
                           - int(before["heap_copied_pages"])
                           - int(before.get("heap_released_pages") or 0)))
    row = {
        "run_id": a.run_id, "policy": policy, "workers": W,
        "heap_objects": heap_objects,
        "heap_mb": "%.2f" % (heap_pages * PAGE / 1048576.0),
        "build_ms": "%.1f" % build_ms, "fork_ms": "%.2f" % fork_ms,
        "requests": sum(reqs),
        "rps": "%.1f" % (sum(reqs) / ((t_hi - t_lo) / 1e9))
        if t_hi > t_lo else "",
        "p50_ms": "%.3f" % pct(50), "p99_ms": "%.3f" % pct(99),
        "p90_ms": "%.3f" % pct(90), "p999_ms": "%.3f" % pct(99.9),
        "heap_shared_pct": "%.3f" % fmean("heap_shared_pct"),
        "private_dirty_kb": "%.0f" % fmean("private_dirty_kb"),
        "teardown_ms": "%.3f" % (sum(t["ms"] for t in td) / W),
        "faults_teardown": "%.0f" % (sum(t["faults"] for t in td) / W),
        "teardown_exit_ms": "%.3f" % (sum(t["exit_ms"] for t in td) / W),
        # heap pages the teardown copied (or gave back), as the server's
        "copied_by_teardown": "%.0f" % (sum(tdc) / len(tdc)) if tdc
        else ("0" if a.exit == "skip" else ""),
        "teardown_timed": "inside" if all(t["inside"] for t in td)
        else "outside",
        "exit": a.exit, "scale": "%g" % a.scale, "workload": a.workload_name,
        "gc": "off" if policy == "gc-off" else "on",
        "gc_threshold": "%d-%d-%d" % gc.get_threshold(),
        "freeze": int(policy == "freeze"), "immortal": 0,
        "lazy": int(policy == "lazy"), "respawns": 0,
        "duration_s": "%.2f" % ((now_ns() - t_fork) / 1e9),
        "requests_per_worker": a.requests,
        "worker_requests_min": min(reqs), "worker_requests_max": max(reqs),
        "pss_kb": "%.0f" % (sum(pss) / len(pss)) if pss else "",
        "master_pss_kb": master_pss,
        "total_pss_kb": "%.0f" % (sum(pss) + master_pss)
        if pss and master_pss != "" else "",
        "gc_tracked": gc_tracked, "python": platform.python_version(),
        "prefork_gc": a.prefork_gc,
        "fork_gc_count_0": fork_count[0], "fork_gc_count_1": fork_count[1],
        "fork_gc_count_2": fork_count[2],
        "fork_long_lived_pending": "" if fork_pending is None
        else fork_pending,
        "fork_long_lived_total": "" if fork_total is None else fork_total,
        "first_full_gc_request": "%.1f" % (sum(ffull) / len(ffull))
        if ffull else "",
        "workers_full_gc": len(ffull),
        "status": "ok" if all(os.WIFEXITED(t["status"]) and
                              os.WEXITSTATUS(t["status"]) == 0 for t in td)
        else "failed: a worker did not exit 0",
    }
    for col in ("rss_kb", "minflt", "faults_gc", "faults_request",
                "faults_other", "gc_collections_0", "gc_collections_1",
                "gc_collections_2", "gc_time_us", "heap_released_pages"):
        v = fmean(col)
        row[col] = "%.1f" % v if v != "" else ""
    with open(os.path.join(a.cell_dir, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RUN_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerow(row)
    meta = {"run_id": a.run_id, "policy": policy, "exit": a.exit,
            "python": sys.version, "executable": sys.executable,
            "kernel": platform.release(), "cores": os.cpu_count(),
            "workers": W, "scale": a.scale, "requests_per_worker": a.requests,
            "prefork_gc": a.prefork_gc,
            "gc_at_fork": {"count": list(fork_count),
                           "long_lived_pending": fork_pending,
                           "long_lived_total": fork_total},
            "heap_pages": heap_pages, "gc_tracked_at_fork": gc_tracked,
            "workload": spec,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")}
    with open(os.path.join(a.cell_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    os.unlink(snap)
    return 0


def worker_main(a, spec, app, slots, i, go_fd, t_fork):
    """The worker's life; never returns into the master's code."""
    try:
        serve(a, spec, app, slots, i, go_fd)
    except BaseException:
        import traceback
        traceback.print_exc()
        os._exit(70)
    armed = a.exit == "finalize" and a.marker and arm_marker(a.marker,
                                                             slots, i, 1)
    sput(slots, i, F_MINEXIT, minflt_self())
    sput(slots, i, F_TEXIT, now_ns())
    if a.exit == "skip":
        sput(slots, i, F_MINFIN, minflt_self())
        sput(slots, i, F_TFIN, now_ns())
        os._exit(0)
    del armed
    sys.exit(0)                                 # Py_FinalizeEx


def serve(a, spec, app, slots, i, go_fd):
    sput(slots, i, F_PID, os.getpid())
    if app is None:                             # lazy: build after fork
        t0 = now_ns()
        if a.prefork_gc == "collected":
            gc.disable()
        app = build_app(spec, a.scale, 42 + i)
        if a.prefork_gc == "collected":
            gc.enable()
            gc.collect()
        sput(slots, i, F_OBJS, len(app.index))
        sput(slots, i, F_BUILDUS, (now_ns() - t0) // 1000)
    # The worker's own collections, from here on (as the server counts:
    # neither the master's nor a lazy worker's build collections)
    counts = [0, 0, 0]
    for g in range(3):
        sput(slots, i, F_GC0 + g, counts[g])
    state = {"f0": 0, "t0": 0, "fgc": 0, "us": 0, "k": 0}

    def on_gc(phase, info):
        if phase == "start":
            if info["generation"] == 2 and not sget(slots, i, F_FFULL):
                sput(slots, i, F_FFULL, state["k"] + 1)
            state["f0"] = minflt_self()
            state["t0"] = now_ns()
            return
        state["fgc"] += minflt_self() - state["f0"]
        state["us"] += (now_ns() - state["t0"]) // 1000
        g = info["generation"]
        counts[g] += 1
        sput(slots, i, F_GC0 + g, counts[g])
        sput(slots, i, F_FGC, state["fgc"])
        sput(slots, i, F_GCUS, state["us"])
    gc.callbacks.append(on_gc)
    rng = random.Random(1000 + i)
    walker = Walker()
    nr = len(app.routes)
    lat = array.array("d", bytes(8 * a.requests))
    freq = 0
    sput(slots, i, F_STATE, ST_SERVING)
    sput(slots, i, F_T0, now_ns())
    pc = time.perf_counter
    for k in range(a.requests):
        state["k"] = k
        f0 = minflt_self()
        g0 = state["fgc"]
        t = pc()
        handle(app, (k + i) % nr, rng, walker)
        lat[k] = pc() - t
        freq += minflt_self() - f0 - (state["fgc"] - g0)
        sput(slots, i, F_FREQ, freq)
        sput(slots, i, F_REQ, k + 1)
    sput(slots, i, F_T1, now_ns())
    gc.callbacks.remove(on_gc)                  # teardown's are not ours
    with open(os.path.join(a.cell_dir, "latency-%d.bin" % i), "wb") as f:
        lat.tofile(f)
    sput(slots, i, F_STATE, ST_LOADED)
    os.read(go_fd, 1)                           # EOF: the master says go


def alive(pid):
    """Running, not a zombie (the sampler is not the workers' parent)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return False
    return s[s.rindex(")") + 2] not in "ZX"


def sampler_main(a, slots, rfd, wfd):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(rfd, 65536)
        if not chunk:
            return
        buf += chunk
    msg = json.loads(buf)
    pids, t0, heap_pages = msg["pids"], msg["t0"], msg["heap_pages"]
    ranges = []
    with open(msg["snapshot"], "rb") as f:
        data = f.read()
    off = 0
    while off < len(data):
        first, n = struct.unpack_from("QQ", data, off)
        off += 16
        ranges.append((first, data[off:off + n]))
        off += n
    W = len(pids)
    out = open(os.path.join(a.cell_dir, "samples.csv"), "w", newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(SAMPLE_COLUMNS)
    out.flush()

    def sample():
        t_ms = (now_ns() - t0) / 1e6
        for i, pid in enumerate(pids):
            if sget(slots, i, F_STATE) < ST_SERVING:
                continue
            sm, stt = smaps_rollup(pid), proc_stat(pid)
            cr = count_copied(pid, ranges) if heap_pages else (0, 0)
            if sm is None or stt is None or cr is None:
                continue
            copied, released = cr
            fgc, freq = sget(slots, i, F_FGC), sget(slots, i, F_FREQ)
            w.writerow([
                a.run_id, a.policy, i, pid, "%.1f" % t_ms,
                sget(slots, i, F_REQ), sm.get("Rss", 0), sm.get("Pss", 0),
                sm.get("Shared_Clean", 0), sm.get("Shared_Dirty", 0),
                sm.get("Private_Clean", 0), sm.get("Private_Dirty", 0),
                stt[0], stt[1], heap_pages, copied,
                "%.3f" % (100.0 * (1 - (copied + released) / heap_pages)
                          if heap_pages else 0.0),
                sget(slots, i, F_GC0), sget(slots, i, F_GC1),
                sget(slots, i, F_GC2), sget(slots, i, F_GCUS), fgc, freq,
                max(0, stt[0] - fgc - freq), released])
        out.flush()
    period = a.sample_ms / 1e3
    deadline = time.monotonic() + a.load_timeout
    while True:
        if all(sget(slots, i, F_STATE) == ST_LOADED for i in range(W)):
            sample()                            # the final row of each
            break
        if time.monotonic() > deadline or any(
                sget(slots, i, F_STATE) != ST_LOADED and not alive(pid)
                for i, pid in enumerate(pids)):
            break                               # the master sees why
        sample()
        time.sleep(period)
    out.close()
    os.write(wfd, b"x")


# ---- the driver -------------------------------------------------------------

def load_spec(workload, python_bin):
    """The workload as the server parses it (bin/cowlab --check-config), or
    the JSON file itself when there is no server binary."""
    binp = os.path.join(ROOT, "bin", "cowlab")
    if os.access(binp, os.X_OK):
        cmd = [binp, "--check-config"] + (["--workload", workload]
                                          if workload else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0:
            return json.loads(r.stdout)["workload_spec"]
    with open(workload or os.path.join(ROOT, "workloads", "webapp.json")) as f:
        return json.load(f)


# ---- bytes by type ------------------------------------------------------------
#
# What the build allocates, two ways, in the interpreter under test:
#   measured  tracemalloc's traces that the build left alive, each block
#             rounded as the allocator rounds it (pymalloc: 16 bytes up to
#             512; glibc above: 8 bytes of header, then 16): the heap bytes
#             of the build, the figure the 10% target compares;
#   by type   every object the build made, found from the modules it
#             registered (gc.get_referents, plus what CPython keeps out of
#             traversal: a code object's tuples, a class's subclass entry),
#             its bytes from sys.getsizeof and CPython's layout: the GC
#             header is in getsizeof; a list's item array and a dict's key
#             table are separate blocks; a class is type()'s block (basic
#             size + one PyMemberDef) and its shared keys; a plain
#             instance's values block follows CPython's rule (each new
#             instance shrinks the shared keys' usable count by one, down to
#             1, and gets nentries + usable slots).  Per type, objects and
#             bytes, under the model's type names.

def alloc_bytes(n):
    if n <= 512:
        return (n + 15) & ~15
    return max(32, (n + 8 + 15) & ~15)


def dict_keys_bytes(n, general):
    """Keys block of a dict that got n inserts (CPython's growth)."""
    if n == 0:
        return 0
    log2, used = 3, 0
    usable = (1 << log2) * 2 // 3
    for _ in range(n):
        if usable == 0:
            need = used * 3
            log2 = 3
            while (1 << log2) < need:
                log2 += 1
            usable = (1 << log2) * 2 // 3 - used
        used += 1
        usable -= 1
    size = 1 << log2
    width = 1 if log2 < 8 else 2 if log2 < 16 else 4
    entry = 24 if general else 16
    return 32 + size * width + (size * 2 // 3) * entry


MANAGED_DICT = 1 << 4


def sizes_main(a):
    import tracemalloc
    spec = json.loads(a.spec_json)
    ver = sys.version_info[:2]
    before_mods = set(sys.modules)
    pre, pre_objs = set(), []       # held, so that no id is reused
    stack = list(sys.modules.values()) + gc.get_objects()
    while stack:
        o = stack.pop()
        if id(o) in pre:
            continue
        pre.add(id(o))
        pre_objs.append(o)
        stack.extend(gc.get_referents(o))
    if a.prefork_gc == "collected":
        gc.disable()
    tracemalloc.start(1)
    s0 = tracemalloc.take_snapshot()
    app = build_app(spec, a.scale, 42)
    if a.prefork_gc == "collected":
        gc.enable()
        gc.collect()
    s1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    harness = sum(alloc_bytes(ix.addr.buffer_info()[1] * 8)
                  for ix in (app.index, app.hot, app.pool)) \
        + alloc_bytes(56) + alloc_bytes(8 * len(app.pool_refs)) * 9 // 8
    measured = (sum(alloc_bytes(t.size) for t in s1.traces)
                - sum(alloc_bytes(t.size) for t in s0.traces) - harness)
    del s0, s1
    # every object the build made
    roots = [sys.modules[k] for k in sys.modules
             if k not in before_mods and k != "app.state"]
    seen, objs, stack = set(pre), [], roots
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        objs.append(o)
        stack.extend(gc.get_referents(o))
        if isinstance(o, types.CodeType):
            stack.append(o.co_consts)
        elif type(o) is type:
            stack.append(o.__name__)            # ht_name: not traversed
    tally = {}

    def add(name, nbytes, n=1):
        e = tally.setdefault(name, [0, 0])
        e[0] += n
        e[1] += nbytes
    basic = type.__basicsize__ + 16            # getsizeof adds the gc head
    subclasses = {}
    for o in objs:
        t = type(o)
        gs = sys.getsizeof(o)
        if t is type:
            keys = gs - basic
            add("type", alloc_bytes(type.__basicsize__ + 40 + 16)
                + (alloc_bytes(keys) if keys > 0 else 0))
            # add_subclass(): a weakref and its key in the base's table
            add("weakref", alloc_bytes(80))
            add("int", alloc_bytes(32))
            base = o.__base__
            subclasses[id(base)] = subclasses.get(id(base), 0) + 1
        elif t is list:
            add("list", alloc_bytes(56)
                + (alloc_bytes(gs - 56) if gs > 56 else 0))
        elif t is dict:
            add("dict", alloc_bytes(64)
                + (alloc_bytes(gs - 64) if gs > 64 else 0))
        elif t is types.CodeType:
            # plus its local names and their kinds, out of reach here
            add("code", alloc_bytes(gs))
            add("tuple", alloc_bytes(40 + 8 * o.co_nlocals))
            add("bytes", alloc_bytes(33 + o.co_nlocals))
        elif t is types.FunctionType:
            add("function", alloc_bytes(gs))
        elif t is types.ModuleType:
            add("module", alloc_bytes(gs))
        elif t in (types.GetSetDescriptorType, types.MemberDescriptorType):
            add("descriptor", alloc_bytes(gs))
        elif t in (str, bytes, int, float, tuple):
            add(t.__name__, alloc_bytes(gs))
        elif type(t) is type and t.__flags__ & MANAGED_DICT:
            add("object", alloc_bytes(gs))
        elif type(t) is type and getattr(t, "__slots__", None) is not None:
            add("object(__slots__)", alloc_bytes(gs))
        elif t in (type(None), bool):
            continue
        else:
            add(t.__name__, alloc_bytes(gs))
    # the subclass tables (dicts with int keys), object's included
    for n in subclasses.values():
        add("dict", alloc_bytes(64) + alloc_bytes(dict_keys_bytes(n, 1)))
    # values blocks, by CPython's rule, class by class in creation order
    byclass = {}
    for o in objs:
        t = type(o)
        if type(t) is type and t.__flags__ & MANAGED_DICT \
                and t is not type and t.__module__ == "app.models":
            byclass.setdefault(t, []).append(o)
    order = {id(o): i for i, o in enumerate(app_creation_order(app))}
    for t, insts in byclass.items():
        insts.sort(key=lambda o: order.get(id(o), 0))
        usable, nentries, vbytes = 30, 0, 0
        for o in insts:
            if usable > 1:
                usable -= 1
            n = nentries + usable
            vbytes += alloc_bytes(((n + 2 + 7) & ~7) + 8 * n)
            if nentries == 0:                   # the first names the attrs
                k = len([x for x in gc.get_referents(o)
                         if x is not t])
                nentries, usable = k, usable - k
        add("object", vbytes, 0)
    out = {"python": platform.python_version(), "scale": a.scale,
           "prefork_gc": a.prefork_gc, "measured_bytes": measured,
           "objects": sum(v[0] for v in tally.values()),
           "by_type": {k: {"objects": v[0],
                                                  "bytes": v[1]}
                                              for k, v in tally.items()}}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


def app_creation_order(app):
    obj = _ctypes.PyObj_FromPtr
    return [obj(x) for x in app.index.addr]


def find_python(version):
    """A working python<version> (on PATH, or in pyenv's versions), or
    None: a pyenv shim for a version pyenv does not select exists but
    fails, so each candidate is run."""
    cands = ["python" + version]
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        root = ""
    if root:
        import glob
        cands += sorted(glob.glob(os.path.join(
            root, "versions", version + "*", "bin", "python" + version)))
    want = tuple(int(x) for x in version.split("."))
    for c in cands:
        try:
            r = subprocess.run([c, "-c", "import sys; print(sys.version_"
                                "info[0], sys.version_info[1])"],
                               capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0 and tuple(int(x) for x in
                                       r.stdout.split()[:2]) == want:
            return shutil.which(c) or c
    return None


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/cpython_experiment.py",
        description="Run the cowlab policy matrix with CPython itself (fork, "
        "gc.set_threshold(0), gc.freeze(), os._exit) and write the server's "
        "CSV columns; --validate also runs the model and compares, for "
        "CPython 3.11 and 3.12.")
    p.add_argument("--policies", default=",".join(POLICIES))
    p.add_argument("--exits", default=",".join(EXITS))
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--requests", type=int, default=1000,
                   help="requests per worker [%(default)s]")
    p.add_argument("--workload", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--sample-ms", type=int, default=250)
    p.add_argument("--load-timeout", type=float, default=600)
    p.add_argument("--prefork-gc", choices=["import", "collected"],
                   default="import",
                   help="the collector during the build: by its thresholds "
                   "as an import, or paused and a gc.collect() at the end "
                   "[%(default)s]")
    p.add_argument("--quick", action="store_true",
                   help="scale 0.05, 2 workers, 200 requests per worker")
    p.add_argument("--validate", action="store_true",
                   help="for each of --versions: run the model (scripts/"
                   "runner.py --python V) and CPython V on the same matrix, "
                   "and print them side by side")
    p.add_argument("--versions", default="3.11,3.12",
                   help="CPython versions --validate compares [%(default)s]")
    p.add_argument("--compare", nargs=2, metavar=("MODEL_OUT", "CPYTHON_OUT"),
                   help="only print the comparison of two results folders")
    p.add_argument("--python", default=sys.executable,
                   help="the CPython to measure [this one]")
    p.add_argument("--sizes", action="store_true",
                   help="only print the build's bytes by type (JSON)")
    # internal: one cell in a fresh interpreter
    p.add_argument("--cell-run", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sizes-run", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--baseline-run", action="store_true",
                   help=argparse.SUPPRESS)
    p.add_argument("--policy", help=argparse.SUPPRESS)
    p.add_argument("--exit", help=argparse.SUPPRESS)
    p.add_argument("--run-id", help=argparse.SUPPRESS)
    p.add_argument("--cell-dir", help=argparse.SUPPRESS)
    p.add_argument("--spec-json", help=argparse.SUPPRESS)
    p.add_argument("--workload-name", help=argparse.SUPPRESS)
    p.add_argument("--marker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.scale, a.workers = 0.05, 2
        if "--requests" not in " ".join(argv):
            a.requests = 200
    for v in a.versions.split(","):
        if v not in ("3.11", "3.12"):
            p.error("--versions: %r is not 3.11 or 3.12" % v)
    return a


def baseline_main(a):
    """Py_Finalize of this interpreter with no app: forked workers that
    exit at once, timed as a cell's workers are.  What CPython's teardown
    costs on its own (its modules, types, interned names), which the model
    does not have: the comparison takes it off CPython's figures."""
    marker = a.marker
    slots = mmap.mmap(-1, SLOT)
    res = []
    for _ in range(5):
        sput(slots, 0, F_TFIN, 0)
        pid = os.fork()
        if pid == 0:
            ok = arm_marker(marker, slots, 0) if marker else False
            sput(slots, 0, F_MINEXIT, minflt_self())
            sput(slots, 0, F_TEXIT, now_ns())
            del ok
            sys.exit(0)
        os.waitpid(pid, 0)
        t_exit, t_fin = sget(slots, 0, F_TEXIT), sget(slots, 0, F_TFIN)
        if t_fin >= t_exit > 0:
            res.append(((t_fin - t_exit) / 1e6,
                        sget(slots, 0, F_MINFIN) - sget(slots, 0, F_MINEXIT)))
    res.sort()
    out = {"python": platform.python_version(), "runs": len(res),
           "teardown_ms": res[len(res) // 2][0] if res else None,
           "faults_teardown": res[len(res) // 2][1] if res else None}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


def run_baseline(a, folder):
    marker = build_marker(folder)
    if marker is None:
        return None
    r = subprocess.run([a.python, os.path.abspath(__file__),
                        "--baseline-run", "--marker", marker],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout.splitlines()[-1])


def run_sizes(a, spec):
    """The build's bytes by type in the interpreter a.python, or None."""
    cmd = [a.python, os.path.abspath(__file__), "--sizes-run",
           "--scale", "%g" % a.scale, "--prefork-gc", a.prefork_gc,
           "--spec-json", json.dumps(spec)]
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=a.load_timeout)
    if r.returncode != 0:
        sys.stderr.write("cpython: --sizes failed: %s\n" % r.stderr[-2000:])
        return None
    return json.loads(r.stdout.splitlines()[-1])


def run_matrix(a, out):
    spec = load_spec(a.workload, a.python)
    policies = [x for x in a.policies.split(",") if x]
    exits = [x for x in a.exits.split(",") if x]
    os.makedirs(os.path.join(out, "cells"), exist_ok=True)
    marker = build_marker(out) if "finalize" in exits else None
    if "finalize" in exits and marker is None:
        sys.stderr.write("cpython: no C compiler: finalize is timed from "
                         "outside (kernel exit included)\n")
    rows, t_start = [], time.monotonic()
    n = len(policies) * len(exits)
    k = 0
    for pol in policies:
        for ex in exits:
            k += 1
            rid = "%s-w%d-s%g-%s" % (pol.replace("+", "_"), a.workers,
                                     a.scale, ex)
            if pol not in AVAILABLE:
                sys.stderr.write("[%2d/%d] cpython %-16s exit=%-8s n/a: "
                                 "CPython has no immortalization call\n"
                                 % (k, n, pol, ex))
                continue
            cdir = os.path.join(out, "cells", rid)
            cmd = [a.python, os.path.abspath(__file__), "--cell-run",
                   "--policy", pol, "--exit", ex, "--run-id", rid,
                   "--cell-dir", cdir, "--workers", str(a.workers),
                   "--scale", "%g" % a.scale, "--requests", str(a.requests),
                   "--sample-ms", str(a.sample_ms),
                   "--load-timeout", str(a.load_timeout),
                   "--spec-json", json.dumps(spec),
                   "--workload-name", spec.get("name", "webapp"),
                   "--prefork-gc", a.prefork_gc]
            if marker:
                cmd += ["--marker", marker]
            t0 = time.monotonic()
            r = subprocess.run(cmd, timeout=a.load_timeout + 300)
            got = []
            try:
                with open(os.path.join(cdir, "runs.csv")) as f:
                    got = list(csv.DictReader(f))
            except OSError:
                pass
            if r.returncode != 0 or not got:
                sys.stderr.write("[%2d/%d] cpython %-16s exit=%-8s FAILED "
                                 "(status %d)\n" % (k, n, pol, ex,
                                                    r.returncode))
                continue
            rows.extend(got)
            g = got[0]
            sys.stderr.write(
                "[%2d/%d] cpython %-16s exit=%-8s done: %s requests, shared "
                "%s%%, teardown %s ms  (%.1f s, total %.1f s)\n" % (
                    k, n, pol, ex, g["requests"], g["heap_shared_pct"],
                    g["teardown_ms"], time.monotonic() - t0,
                    time.monotonic() - t_start))
    # merge
    with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RUN_COLUMNS, lineterminator="\n",
                           extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(out, "samples.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(SAMPLE_COLUMNS)
        for rid in sorted(os.listdir(os.path.join(out, "cells"))):
            p = os.path.join(out, "cells", rid, "samples.csv")
            if os.path.exists(p):
                with open(p) as g:
                    for i, line in enumerate(csv.reader(g)):
                        if i:
                            w.writerow(line)
    return rows


# ---- comparison -------------------------------------------------------------

def read_runs(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def fnum(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def per_policy(rows):
    out = {}
    for r in rows:
        if not r.get("status", "ok").startswith("ok"):
            continue
        d = out.setdefault(r["policy"], {"runs": []})
        d["runs"].append(r)
    res = {}
    for pol, d in out.items():
        rs = d["runs"]

        def m(col, ex=None):
            v = [fnum(r.get(col)) for r in rs
                 if ex is None or r.get("exit") == ex]
            v = [x for x in v if x is not None]
            return sum(v) / len(v) if v else None
        loaded = any(r.get("heap_shared_pct_loaded") for r in rs)
        pd = "private_dirty_kb_loaded" if loaded else "private_dirty_kb"
        res[pol] = {
            "heap_objects": m("heap_objects"), "heap_mb": m("heap_mb"),
            # the runner's *_loaded columns leave out a worker that got
            # (almost) no requests; CPython's workers all serve theirs
            "shared": m("heap_shared_pct_loaded") if loaded
            else m("heap_shared_pct"),
            "pd_mib": (m(pd) or 0) / 1024 if m(pd) is not None else None,
            "pss_mib": (m("pss_kb") or 0) / 1024
            if m("pss_kb") is not None else None,
            "total_mib": (m("total_pss_kb") or 0) / 1024
            if m("total_pss_kb") is not None else None,
            "f_gc": m("faults_gc"), "f_req": m("faults_request"),
            "f_other": m("faults_other"),
            "gc0": m("gc_collections_0"), "gc1": m("gc_collections_1"),
            "gc2": m("gc_collections_2"),
            "td_fin": m("teardown_ms", "finalize"),
            "tf_fin": m("faults_teardown", "finalize"),
            "cp_fin": m("copied_by_teardown", "finalize"),
            "td_skip": m("teardown_ms", "skip"),
            "tf_skip": m("faults_teardown", "skip"),
        }
    return res


COMPARE = [
    # label, key, format, how the two are compared: "pp" percentage
    # points, "x" a ratio (model / CPython), "" not at all
    ("heap objects", "heap_objects", "%.0f", "x"),
    ("heap at fork (MiB)", "heap_mb", "%.1f", "x"),
    ("heap shared %", "shared", "%.1f", "pp"),
    ("heap copied %", "copied", "%.1f", "pp"),
    ("private dirty/worker (MiB)", "pd_mib", "%.1f", "x"),
    ("PSS/worker (MiB)", "pss_mib", "%.1f", "x"),
    ("total PSS (MiB)", "total_mib", "%.1f", "x"),
    ("faults gc/worker", "f_gc", "%.0f", "x"),
    ("faults request/worker", "f_req", "%.0f", "x"),
    ("faults other/worker", "f_other", "%.0f", "x"),
    ("gen0 collections", "gc0", "%.0f", "x"),
    ("gen1 collections", "gc1", "%.0f", "x"),
    ("gen2 collections", "gc2", "%.1f", "x"),
    ("first full GC (request)", "ffull", "%.0f", "x"),
    ("gc count at fork", "count", "%s", ""),
    ("pending/total at fork", "pending", "%s", ""),
    ("teardown finalize (ms)", "td_fin", "%.1f", "x"),
    ("  less interpreter's own", "td_fin_app", "%.1f", "x"),
    ("faults finalize", "tf_fin", "%.0f", "x"),
    ("heap pages copied by finalize", "cp_fin", "%.0f", "x"),
    ("teardown skip (ms)", "td_skip", "%.3f", ""),
    ("faults skip", "tf_skip", "%.0f", ""),
]


def per_policy(rows):
    out = {}
    for r in rows:
        if not r.get("status", "ok").startswith("ok"):
            continue
        d = out.setdefault(r["policy"], {"runs": []})
        d["runs"].append(r)
    res = {}
    for pol, d in out.items():
        rs = d["runs"]

        def m(col, ex=None):
            v = [fnum(r.get(col)) for r in rs
                 if ex is None or r.get("exit") == ex]
            v = [x for x in v if x is not None]
            return sum(v) / len(v) if v else None
        loaded = any(r.get("heap_shared_pct_loaded") for r in rs)
        pd = "private_dirty_kb_loaded" if loaded else "private_dirty_kb"
        shared = m("heap_shared_pct_loaded") if loaded \
            else m("heap_shared_pct")
        r0 = rs[0]
        res[pol] = {
            "heap_objects": m("heap_objects"), "heap_mb": m("heap_mb"),
            # the runner's *_loaded columns leave out a worker that got
            # (almost) no requests; CPython's workers all serve theirs
            "shared": shared,
            "copied": 100.0 - shared if shared is not None else None,
            "pd_mib": (m(pd) or 0) / 1024 if m(pd) is not None else None,
            "pss_mib": (m("pss_kb") or 0) / 1024
            if m("pss_kb") is not None else None,
            "total_mib": (m("total_pss_kb") or 0) / 1024
            if m("total_pss_kb") is not None else None,
            "f_gc": m("faults_gc"), "f_req": m("faults_request"),
            "f_other": m("faults_other"),
            "gc0": m("gc_collections_0"), "gc1": m("gc_collections_1"),
            "gc2": m("gc_collections_2"),
            "ffull": m("first_full_gc_request"),
            "count": "%s-%s-%s" % (r0.get("fork_gc_count_0", "?"),
                                   r0.get("fork_gc_count_1", "?"),
                                   r0.get("fork_gc_count_2", "?")),
            "pending": "%s/%s" % (r0.get("fork_long_lived_pending", "?"),
                                  r0.get("fork_long_lived_total", "?")),
            "td_fin": m("teardown_ms", "finalize"),
            "tf_fin": m("faults_teardown", "finalize"),
            "cp_fin": m("copied_by_teardown", "finalize"),
            "td_skip": m("teardown_ms", "skip"),
            "tf_skip": m("faults_teardown", "skip"),
        }
    return res


def diff_text(mv, cv, how):
    if how == "" or mv is None or cv is None or isinstance(mv, str):
        return ""
    if how == "pp":
        return "%+.1f pp" % (mv - cv)
    if cv == 0:
        return "" if mv == 0 else "(CPython 0)"
    return "%.2fx" % (mv / cv)


def model_meta(model_dir):
    """meta.json of a model cell that built a heap in the master."""
    cells = os.path.join(model_dir, "cells")
    for rid in sorted(os.listdir(cells)) if os.path.isdir(cells) else []:
        try:
            with open(os.path.join(cells, rid, "meta.json")) as f:
                m = json.load(f)
        except (OSError, ValueError):
            continue
        if m.get("heap_by_type"):
            return m
    return None


def sizes_lines(model_dir, csizes):
    """The bytes-by-type table: model (meta.json) against CPython."""
    mm = model_meta(model_dir)
    lines, rows = [], []
    if mm is None or csizes is None:
        return ["bytes by type: n/a (%s)" % ("no model cell with a heap"
                                              if mm is None else
                                              "CPython's --sizes failed")],\
            rows
    M, C = mm["heap_by_type"], csizes["by_type"]
    lines.append("%-20s %10s %10s %9s %9s %8s %10s %10s" % (
        "bytes by type", "model obj", "CPy obj", "model B/o", "CPy B/o",
        "B/o", "model MiB", "CPy MiB"))
    tm = tc = 0
    for t in sorted(set(M) | set(C), key=lambda k: -(C.get(k, {}).get(
            "bytes", 0) + M.get(k, {}).get("bytes", 0))):
        mo, mb = M.get(t, {}).get("objects", 0), M.get(t, {}).get("bytes", 0)
        co, cb = C.get(t, {}).get("objects", 0), C.get(t, {}).get("bytes", 0)
        tm += mb
        tc += cb
        mbo = mb / mo if mo else None
        cbo = cb / co if co else None
        lines.append("%-20s %10d %10d %9s %9s %8s %10.2f %10.2f" % (
            t, mo, co, "%.0f" % mbo if mbo else "-",
            "%.0f" % cbo if cbo else "-", diff_text(mbo, cbo, "x"),
            mb / 2**20, cb / 2**20))
        rows.append(["bytes_by_type", t, mo, co, mb, cb])
    lines.append("%-20s %10s %10s %9s %9s %8s %10.2f %10.2f" % (
        "all types", "", "", "", "", diff_text(tm, tc, "x"), tm / 2**20,
        tc / 2**20))
    mbuild = mm.get("build_heap_bytes")
    cmeas = csizes.get("measured_bytes")
    if mbuild and cmeas:
        lines.append("heap bytes of the build: model %.1f MiB (allocator), "
                     "CPython %.1f MiB (tracemalloc, rounded per block): "
                     "%+.1f%%" % (mbuild / 2**20, cmeas / 2**20,
                                  100.0 * (mbuild - cmeas) / cmeas))
        rows.append(["heap_bytes_build", "", "", "", mbuild, cmeas])
    return lines, rows


def compare(model_dir, cpy_dir, csizes=None, version=None, base=None):
    M = per_policy(read_runs(os.path.join(model_dir, "runs.csv")))
    C = per_policy(read_runs(os.path.join(cpy_dir, "runs.csv")))
    mm = model_meta(model_dir)
    for pol, d in M.items():
        if mm and mm.get("heap_by_type") and pol != "lazy":
            d["heap_objects"] = sum(v["objects"] for v in
                                    mm["heap_by_type"].values())
    for pol, d in C.items():
        if csizes and pol != "lazy":
            d["heap_objects"] = csizes["objects"]
        # CPython's teardown less the interpreter's own (the model has
        # none): the figures the targets compare
        if base and base.get("teardown_ms") is not None \
                and d.get("td_fin") is not None:
            d["td_fin_app"] = max(0.0, d["td_fin"] - base["teardown_ms"])
    for d in M.values():
        d["td_fin_app"] = d.get("td_fin")
    pols = [p for p in POLICIES if p in M or p in C] + \
        sorted(p for p in set(M) | set(C) if p not in POLICIES)
    crun = read_runs(os.path.join(cpy_dir, "runs.csv"))
    cver = crun[0].get("python") if crun else version or "?"
    lines = []
    csv_rows = [["policy", "figure", "model", "cpython", "difference"]]
    for pol in pols:
        lines.append("%-28s %14s %14s %11s" % (pol, "cowlab model",
                                               "CPython " + cver,
                                               "model vs"))
        for label, key, f, how in COMPARE:
            mv = M.get(pol, {}).get(key)
            cv = C.get(pol, {}).get(key)
            ms = f % mv if mv is not None else "n/a"
            cs = f % cv if cv is not None else "n/a"
            dt = diff_text(mv, cv, how)
            lines.append("  %-26s %14s %14s %11s" % (label, ms, cs, dt))
            csv_rows.append([pol, key, ms, cs, dt])
        lines.append("")
    sl, srows = sizes_lines(model_dir, csizes)
    lines += sl + [""]
    csv_rows += srows
    if base:
        lines.append("CPython's Py_Finalize with no app (its own modules and "
                     "types; median of %d forked workers): %.1f ms, %d "
                     "faults; the time is taken off CPython's teardown time "
                     "('less interpreter's own'); its faults are in "
                     "'faults finalize', not in the heap pages copied" % (
                         base["runs"], base["teardown_ms"] or 0,
                         base["faults_teardown"] or 0))
        lines.append("")
    lines += targets(M, C, model_dir, csizes)
    lines.append("")
    lines.append("Per worker, at the end of the load; mean of the finalize "
                 "and skip runs (teardown: per exit policy).  Model: wrk over "
                 "HTTP; CPython: the same request shapes in a loop (no "
                 "HTTP).  Teardown: from the worker's decision to the end of "
                 "Py_Finalize's work in both (CPython: a Py_AtExit marker; "
                 "the kernel's exit is in neither).  Collections: the "
                 "workers' own, from their first request on.  \"model vs\": "
                 "model / CPython, or model - CPython in percentage points.")
    text = "\n".join(lines) + "\n"
    return text, csv_rows


def targets(M, C, model_dir, csizes):
    """The issue's targets, met or missed, with the figure reached."""
    out = ["targets:"]

    def say(ok, what):
        out.append("  [%s] %s" % ("met" if ok else "MISSED", what))
    both = [p for p in POLICIES if p in M and p in C]
    for p in both:
        d = M[p]["copied"] - C[p]["copied"]
        say(abs(d) <= 10, "%s: heap copied %% within 10 pp (%+.1f pp)"
            % (p, d))
    om = sorted(both, key=lambda p: M[p]["copied"])
    oc = sorted(both, key=lambda p: C[p]["copied"])
    say(om == oc or all(abs(M[x]["copied"] - M[y]["copied"]) < 1.0
                        or abs(C[x]["copied"] - C[y]["copied"]) < 1.0
                        for x, y in zip(om, oc) if x != y),
        "same ordering of policies by copied %% (model %s; CPython %s)"
        % (" < ".join(om), " < ".join(oc)))
    for p in both:
        mv, cv = M[p]["td_fin"], C[p].get("td_fin_app", C[p]["td_fin"])
        if mv and cv:
            say(0.5 <= mv / cv <= 2, "%s: finalize time within 2x (%.2fx of "
                "CPython's, less the interpreter's own)" % (p, mv / cv))
    for p in both:
        mv, cv = M[p]["ffull"], C[p]["ffull"]
        if mv or cv:
            ok = bool(mv and cv and 0.5 <= mv / cv <= 2)
            say(ok, "%s: first full collection within 2x of CPython's "
                "request (model %s, CPython %s)" % (
                    p, "%.0f" % mv if mv else "none",
                    "%.0f" % cv if cv else "none"))
    if "freeze" in M and "default" in M:
        for name, S in (("model", M), ("CPython", C)):
            f, d = S.get("freeze", {}), S.get("default", {})
            if f.get("td_fin_app") and d.get("td_fin_app"):
                rt = f["td_fin_app"] / d["td_fin_app"]
                rf = (f["tf_fin"] / d["tf_fin"]) if d.get("tf_fin") else 0
                rc = (f["cp_fin"] / d["cp_fin"]) \
                    if d.get("cp_fin") and f.get("cp_fin") is not None \
                    else None
                line = ("%s: freeze+finalize %.2fx the time of "
                        "default+finalize, minor faults %.2fx, heap pages "
                        "copied %s" % (name, rt, rf,
                                       "%.2fx" % rc if rc is not None
                                       else "n/a"))
                if name == "model":
                    say(rt <= 0.3 and abs(rf - 1) <= 0.2, line)
                else:
                    out.append("  (%s)" % line)
    mm = model_meta(model_dir)
    if mm and csizes and mm.get("build_heap_bytes"):
        mb, cb = mm["build_heap_bytes"], csizes["measured_bytes"]
        say(abs(mb - cb) <= 0.1 * cb, "heap bytes within 10%% of CPython's "
            "(%+.1f%%)" % (100.0 * (mb - cb) / cb))
    return out


def validate(a):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = a.out or os.path.join("results", "validate-" + stamp)
    pols = ",".join(p for p in a.policies.split(",") if p)
    spec = load_spec(a.workload, a.python)
    texts, rows_all, failed = [], [["python"] + ["policy", "figure",
                                                 "model", "cpython",
                                                 "difference"]], 0
    for v in a.versions.split(","):
        vout = os.path.join(out, v)
        model_out = os.path.join(vout, "model")
        cpy_out = os.path.join(vout, "cpython")
        python = find_python(v)
        if python is None:
            msg = ("SKIP CPython %s: no python%s on PATH or in pyenv "
                   "(not compared, not passed)" % (v, v))
            sys.stderr.write("validate: %s\n" % msg)
            texts.append("== CPython %s ==\n%s\n" % (v, msg))
            continue
        cmd = [sys.executable, os.path.join(HERE, "runner.py"),
               "--policies", pols, "--exits", a.exits,
               "--workers", str(a.workers), "--scale", "%g" % a.scale,
               "--requests", str(a.requests), "--out", model_out,
               "--python", v, "--prefork-gc", a.prefork_gc, "--no-plots"]
        if a.workload:
            cmd += ["--workload", a.workload]
        sys.stderr.write("validate %s: the model (scripts/runner.py) into "
                         "%s\n" % (v, model_out))
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL)
        if r.returncode != 0:
            failed = 1
            sys.stderr.write("validate %s: the model's runs failed (status "
                             "%d)\n" % (v, r.returncode))
        a.python = python
        sys.stderr.write("validate %s: CPython (%s) into %s\n"
                         % (v, python, cpy_out))
        run_matrix(a, cpy_out)
        sys.stderr.write("validate %s: bytes by type\n" % v)
        csizes = run_sizes(a, spec)
        if csizes is not None:
            with open(os.path.join(vout, "cpython_sizes.json"), "w") as f:
                json.dump(csizes, f, indent=2)
        base = run_baseline(a, vout)
        if base is not None:
            with open(os.path.join(vout, "cpython_baseline.json"), "w") as f:
                json.dump(base, f, indent=2)
        text, rows = compare(model_out, cpy_out, csizes, v, base)
        with open(os.path.join(vout, "comparison.txt"), "w") as f:
            f.write(text)
        texts.append("== CPython %s ==\n%s" % (v, text))
        rows_all += [[v] + r for r in rows[1:]]
    text = "\n".join(texts)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "comparison.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "comparison.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows_all)
    sys.stdout.write("\n" + text)
    sys.stderr.write("validate: results in %s (comparison.txt)\n" % out)
    return failed


def main(argv):
    a = parse_args(argv)
    if a.cell_run:
        return cell_main(a)
    if a.sizes_run:
        return sizes_main(a)
    if a.baseline_run:
        return baseline_main(a)
    if a.compare:
        text, _ = compare(*a.compare)
        sys.stdout.write(text)
        return 0
    if a.validate:
        return validate(a)
    if a.sizes:
        res = run_sizes(a, load_spec(a.workload, a.python))
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
        return 0 if res else 1
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = a.out or os.path.join("results", "cpython-" + stamp)
    rows = run_matrix(a, out)
    sys.stderr.write("cpython: %d runs; results in %s\n" % (len(rows), out))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
