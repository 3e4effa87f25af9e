#!/usr/bin/env python3
"""
cpython_experiment.py -- the cowlab experiment run with CPython itself, to
check the model against the real thing.  Standard library only; Linux.

Same shape as scripts/runner.py, without HTTP:
    master: build a web app's heap from the same workload JSON (modules with
        globals, classes with method dicts, functions with code objects that
        point back at their globals, interned identifiers, settings dicts of
        atoms, model classes with field instances that point back at them,
        instances with __dict__ or __slots__, URL tuples, template trees),
        apply the policy, snapshot which pages of its anonymous memory are
        present (/proc/self/pagemap), fork W workers
    worker: REQUESTS "requests" in a loop, cycling the workload's routes: the
        same reads (refcount writes on shared objects, a walk over children
        with gc.get_referents), temporaries, cyclic garbage, retained cache
        entries and a JSON response; then waits, and exits by the policy
    sampler: a process forked *before* the heap is built (so it shares none
        of it and its own allocations copy nothing) samples every worker
        from /proc/PID/smaps_rollup, /proc/PID/stat and /proc/PID/pagemap
        and writes samples.csv, with the columns of the server's samples.csv

Policies, as CPython spells them:
    default          GC on (700, 10, 10); the build runs with the GC paused
                     and ends with gc.collect(), as cowlab's build does
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
                     present at fork -- not only the object allocator's
    heap_copied_pages  of those, present and exclusively mapped (pagemap
                     bit 56) in the worker: the same test as the server's
    teardown_ms      from the worker's decision to exit to the master's
                     wait4() returning: includes the kernel's exit (unmapping
                     the address space), which the server's figure does not;
                     faults_teardown = ru_minflt from wait4 - minflt then
    rps, p50_ms, p99_ms  requests per second over the workers' loops and
                     percentiles of the in-process service time: no HTTP,
                     no queueing, not comparable with wrk's figures
Output: OUT/samples.csv, OUT/runs.csv (the server's columns plus extras),
OUT/cells/<run_id>/meta.json.

--validate runs the model (scripts/runner.py, the same matrix) and this
script, then prints the two side by side per policy (comparison.txt/.csv).
"""

import argparse
import array
import csv
import datetime
import gc
import json
import mmap
import os
import platform
import random
import resource
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
    "faults_request", "faults_other"]
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
    "gc_tracked", "python", "status"]

POLICIES = ["default", "gc-off", "freeze", "freeze+immortal", "lazy"]
AVAILABLE = {"default", "gc-off", "freeze", "lazy"}
EXITS = ["finalize", "skip"]

# ---- shared slots -------------------------------------------------------
# One 16 x uint64 slot per worker in a MAP_SHARED mapping made before any
# fork; a worker writes only its own.
F_STATE, F_PID, F_REQ, F_GC0, F_GC1, F_GC2, F_GCUS, F_FGC, F_FREQ, \
    F_TEXIT, F_MINEXIT, F_OBJS, F_BUILDUS, F_T0, F_T1, F_PAD = range(16)
SLOT = 16 * 8
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
         "TEMPLATES", "GET", "POST", "PUT", "DELETE", "id", "caches"]
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
    """The built heap: index (every object built), hot set, pool."""


def scaled(n, scale):
    if n <= 0:
        return 0
    return max(1, int(n * scale + 0.5))


def build_app(spec, scale, seed):
    """Build the heap as workloads/webapp.c does, with CPython objects.
    Everything hangs off sys.modules, so finalization reaches it."""
    h = dict(HEAP_DEFAULTS, **spec.get("heap", {}))
    rng = random.Random(seed)
    app = App()
    index, hot = [], []
    keep = index.append
    base_code = _template.__code__

    names = {}
    for t in NAMES:
        s = sys.intern(t)
        names[t] = s
        keep(s)
        hot.append(s)
    npool = max(scaled(h["interned_strings"], scale),
                h["methods_per_class"] + h["functions_per_module"]
                + h["constants_per_module"] + h["config_keys"]
                + h["fields_per_model"] + h["instance_attrs"])
    pool = []
    for i in range(npool):
        s = sys.intern("%s_%s_%d" % (rng.choice(WORDS), rng.choice(WORDS), i))
        pool.append(s)
        keep(s)
        if i < max(1, npool // 10):
            hot.append(s)

    def ident(i):
        return pool[i % npool]

    def text(lo, hi):
        n = rng.randint(lo, hi)
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
        c = type(name, bases, ns)
        keep(c)
        keep(name)
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
            g[cname] = c
            if first is None:
                first = c
        for j in range(h["functions_per_module"]):
            fname = ident(kbase + j)
            f = function(fname, g, None)
            handlers.append(f)
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
    field = cls("Field", (), {"__module__": "app.models"})
    g["Field"] = field
    kinds = []
    for kname in ("CharField", "IntegerField", "ForeignKey", "DateTimeField"):
        k = cls(kname, (field,), {"__module__": "app.models"})
        g[kname] = k
        kinds.append(k)
    model = cls("Model", (), {"__module__": "app.models"})
    slot_model = cls("SlotModel", (), {"__module__": "app.models",
                                       "__slots__": ()})
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
        c = cls(cname, (model,), {"__module__": "app.models",
                                  "_fields": fields})
        attrs = [ident(fbase + k) for k in range(nattr)]
        sc = cls(cname + "Slots", (slot_model,),
                 {"__module__": "app.models", "__slots__": tuple(attrs)})
        for k in range(h["fields_per_model"]):
            fname = ident(fbase + k)
            fld = kinds[k % 4]()
            keep(fld)
            keep(fld.__dict__)
            col = "%s_%s" % (cname, fname)
            keep(col)
            fld.name = fname
            fld.model = c                           # the cycle
            fld.column = col
            fld.max_length = 255
            fields.append(fld)
            setattr(c, fname, fld)
        insts = []
        keep(insts)
        c._instances = insts
        g[cname] = c
        g[cname + "Slots"] = sc
        models.append((c, sc, attrs, insts))
    made = []
    nmod = len(models)
    for i in range(scaled(h["instances"], scale) if nmod else 0):
        c, sc, attrs, insts = models[i % nmod]
        slotted = (i % 100) < h["slots_percent"]
        o = (sc if slotted else c)()
        keep(o)
        if not slotted:
            keep(o.__dict__)
        for k in range(nattr):
            r = k % 4
            if r == 0:
                v = big_int()
            elif r == 1:
                v = text(3, 24)
            elif r == 2:
                v = pool[rng.randrange(npool)]
            else:
                v = made[rng.randrange(i)] if i > 0 else None
            setattr(o, attrs[k], v)
        insts.append(o)
        made.append(o)
    del made
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
        hd = handlers[rng.randrange(len(handlers))] if handlers else None
        t = (p, hd, meth)
        for o in (p, meth, t):
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
        n = {"tag": pool[rng.randrange(npool)]}
        kids = []
        n["children"] = kids
        keep(n)
        keep(kids)
        for _ in range(h["template_fanout"]):
            kids.append(node(d + 1))
        return n
    for i in range(scaled(h["templates"], scale)):
        tl.append(node(0))
    app.index = index
    app.hot = hot
    app.pool = pool
    app.npool = npool
    app.names = names
    app.routes = [dict(ROUTE_DEFAULTS, **r) for r in spec["routes"]]
    app.caches = None
    app.serial = 0
    sys.modules["app.state"] = module_holding(app)
    return app


def module_holding(app):
    m = types.ModuleType("app.state")
    m.app = app
    return m


# ---- a request --------------------------------------------------------------

def handle(app, ri, rng, get_referents=gc.get_referents):
    r = app.routes[ri]
    idx = app.index
    n = len(idx)
    span = max(1, min(n, int(r["spread"] * n)))
    off = min(int(r["offset"] * n), n - span)
    hot, nhot, hotp = app.hot, len(app.hot), r["hot"]
    depth, width = r["walk_depth"], r["walk_width"]
    items = r["response_items"]
    picked = []
    rand = rng.random
    for _ in range(r["reads"]):
        if hotp > 0 and rand() < hotp:
            o = hot[int(rand() * nhot)]
        else:
            o = idx[off + int(rand() * span)]
        if depth >= 1 and width > 0:
            for c in get_referents(o)[:width]:
                if depth >= 2:
                    for c2 in get_referents(c)[:width]:
                        pass
        if len(picked) < items:
            picked.append(o)
    tmp = None
    if r["temporaries"] > 0:
        tmp = []
        pool, npool = app.pool, app.npool
        for k in range(1, r["temporaries"]):
            ident = pool[int(rand() * npool)]
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
    del tmp
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


def snapshot_pages():
    """Present pages of this process's private anonymous mappings:
    [(first_page, bytes of 0/1 presence)], and the count."""
    ranges = []
    with open("/proc/self/maps") as f:
        maps = f.read().splitlines()
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    total = 0
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
            present = top.translate(PRESENT)
            k = present.count(1)
            if k:
                ranges.append((first, present))
                total += k
    finally:
        os.close(fd)
    return ranges, total


def count_copied(pid, ranges):
    """Snapshot pages present and exclusively mapped (bit 56) in pid."""
    try:
        fd = os.open("/proc/%d/pagemap" % pid, os.O_RDONLY)
    except OSError:
        return None
    n = 0
    try:
        for first, present in ranges:
            top = os.pread(fd, len(present) * 8, first * 8)[7::8]
            if len(top) != len(present):
                return None
            mine = int.from_bytes(top.translate(EXCLUSIVE), "little")
            n += bin(mine & int.from_bytes(present, "little")).count("1")
    except OSError:
        return None
    finally:
        os.close(fd)
    return n


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
    gc.disable()
    if policy == "gc-off":
        gc.set_threshold(0)
    app = None
    t0 = now_ns()
    if policy != "lazy":
        app = build_app(spec, a.scale, 42)
        if policy != "gc-off":
            gc.enable()
            gc.collect()
        if policy == "freeze":
            gc.freeze()
    else:
        gc.enable()
    build_ms = (now_ns() - t0) / 1e6
    gc_tracked = len(gc.get_objects()) if app is not None else 0
    heap_objects = len(app.index) if app is not None else 0
    if policy != "lazy":
        ranges, heap_pages = snapshot_pages()
    else:
        ranges, heap_pages = [], 0
    snap = os.path.join(a.cell_dir, "snapshot.bin")
    with open(snap, "wb") as f:
        for first, present in ranges:
            f.write(struct.pack("QQ", first, len(present)))
            f.write(present)
    del ranges
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
    while len(teardown) < W:
        pid, status, ru = os.wait4(-1, 0)
        t = now_ns()
        if pid in pids:
            i = pids.index(pid)
            teardown[i] = ((t - sget(slots, i, F_TEXIT)) / 1e6,
                           ru.ru_minflt - sget(slots, i, F_MINEXIT), status)
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
        "teardown_ms": "%.3f" % (sum(t[0] for t in teardown.values()) / W),
        "faults_teardown": "%.0f" % (sum(t[1] for t in teardown.values())
                                     / W),
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
        "status": "ok" if all(os.WIFEXITED(t[2]) and
                              os.WEXITSTATUS(t[2]) == 0
                              for t in teardown.values())
        else "failed: a worker did not exit 0",
    }
    for col in ("rss_kb", "minflt", "faults_gc", "faults_request",
                "faults_other", "gc_collections_0", "gc_collections_1",
                "gc_collections_2", "gc_time_us"):
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
    sput(slots, i, F_MINEXIT, minflt_self())
    sput(slots, i, F_TEXIT, now_ns())
    if a.exit == "skip":
        os._exit(0)
    sys.exit(0)                                 # Py_FinalizeEx


def serve(a, spec, app, slots, i, go_fd):
    sput(slots, i, F_PID, os.getpid())
    if app is None:                             # lazy: build after fork
        t0 = now_ns()
        gc.disable()
        app = build_app(spec, a.scale, 42 + i)
        gc.enable()
        gc.collect()
        sput(slots, i, F_OBJS, len(app.index))
        sput(slots, i, F_BUILDUS, (now_ns() - t0) // 1000)
    # The worker's own collections, from here on (as the server counts:
    # neither the master's nor a lazy worker's build collections)
    counts = [0, 0, 0]
    for g in range(3):
        sput(slots, i, F_GC0 + g, counts[g])
    state = {"f0": 0, "t0": 0, "fgc": 0, "us": 0}

    def on_gc(phase, info):
        if phase == "start":
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
    nr = len(app.routes)
    lat = array.array("d", bytes(8 * a.requests))
    freq = 0
    sput(slots, i, F_STATE, ST_SERVING)
    sput(slots, i, F_T0, now_ns())
    pc = time.perf_counter
    for k in range(a.requests):
        f0 = minflt_self()
        g0 = state["fgc"]
        t = pc()
        handle(app, (k + i) % nr, rng)
        lat[k] = pc() - t
        freq += minflt_self() - f0 - (state["fgc"] - g0)
        sput(slots, i, F_FREQ, freq)
        sput(slots, i, F_REQ, k + 1)
    sput(slots, i, F_T1, now_ns())
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
            copied = count_copied(pid, ranges) if heap_pages else 0
            if sm is None or stt is None or copied is None:
                continue
            fgc, freq = sget(slots, i, F_FGC), sget(slots, i, F_FREQ)
            w.writerow([
                a.run_id, a.policy, i, pid, "%.1f" % t_ms,
                sget(slots, i, F_REQ), sm.get("Rss", 0), sm.get("Pss", 0),
                sm.get("Shared_Clean", 0), sm.get("Shared_Dirty", 0),
                sm.get("Private_Clean", 0), sm.get("Private_Dirty", 0),
                stt[0], stt[1], heap_pages, copied,
                "%.3f" % (100.0 * (1 - copied / heap_pages)
                          if heap_pages else 0.0),
                sget(slots, i, F_GC0), sget(slots, i, F_GC1),
                sget(slots, i, F_GC2), sget(slots, i, F_GCUS), fgc, freq,
                max(0, stt[0] - fgc - freq)])
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


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/cpython_experiment.py",
        description="Run the cowlab policy matrix with CPython itself (fork, "
        "gc.set_threshold(0), gc.freeze(), os._exit) and write the server's "
        "CSV columns; --validate also runs the model and compares.")
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
    p.add_argument("--quick", action="store_true",
                   help="scale 0.05, 2 workers, 200 requests per worker")
    p.add_argument("--validate", action="store_true",
                   help="run the model (scripts/runner.py) with the same "
                   "matrix, then CPython, and print them side by side")
    p.add_argument("--compare", nargs=2, metavar=("MODEL_OUT", "CPYTHON_OUT"),
                   help="only print the comparison of two results folders")
    p.add_argument("--python", default=sys.executable,
                   help="the CPython to measure [this one]")
    # internal: one cell in a fresh interpreter
    p.add_argument("--cell-run", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--policy", help=argparse.SUPPRESS)
    p.add_argument("--exit", help=argparse.SUPPRESS)
    p.add_argument("--run-id", help=argparse.SUPPRESS)
    p.add_argument("--cell-dir", help=argparse.SUPPRESS)
    p.add_argument("--spec-json", help=argparse.SUPPRESS)
    p.add_argument("--workload-name", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.scale, a.workers = 0.05, 2
        if "--requests" not in " ".join(argv):
            a.requests = 200
    return a


def run_matrix(a, out):
    spec = load_spec(a.workload, a.python)
    policies = [x for x in a.policies.split(",") if x]
    exits = [x for x in a.exits.split(",") if x]
    os.makedirs(os.path.join(out, "cells"), exist_ok=True)
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
                   "--workload-name", spec.get("name", "webapp")]
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
            "td_skip": m("teardown_ms", "skip"),
            "tf_skip": m("faults_teardown", "skip"),
        }
    return res


COMPARE = [
    ("heap objects", "heap_objects", "%.0f"),
    ("heap at fork (MiB)", "heap_mb", "%.1f"),
    ("heap shared %", "shared", "%.1f"),
    ("private dirty/worker (MiB)", "pd_mib", "%.1f"),
    ("PSS/worker (MiB)", "pss_mib", "%.1f"),
    ("total PSS (MiB)", "total_mib", "%.1f"),
    ("faults gc/worker", "f_gc", "%.0f"),
    ("faults request/worker", "f_req", "%.0f"),
    ("faults other/worker", "f_other", "%.0f"),
    ("gen0 collections", "gc0", "%.0f"),
    ("gen1 collections", "gc1", "%.0f"),
    ("gen2 collections", "gc2", "%.1f"),
    ("teardown finalize (ms)", "td_fin", "%.1f"),
    ("faults finalize", "tf_fin", "%.0f"),
    ("teardown skip (ms)", "td_skip", "%.3f"),
    ("faults skip", "tf_skip", "%.0f"),
]


def compare(model_dir, cpy_dir):
    M = per_policy(read_runs(os.path.join(model_dir, "runs.csv")))
    C = per_policy(read_runs(os.path.join(cpy_dir, "runs.csv")))
    pols = [p for p in POLICIES if p in M or p in C] + \
        sorted(p for p in set(M) | set(C) if p not in POLICIES)
    lines = []
    csv_rows = [["policy", "figure", "model", "cpython"]]
    for pol in pols:
        lines.append("%-28s %14s %14s" % (pol, "cowlab model", "CPython " +
                                          platform.python_version()))
        for label, key, f in COMPARE:
            mv = M.get(pol, {}).get(key)
            cv = C.get(pol, {}).get(key)
            ms = f % mv if mv is not None else "n/a"
            cs = f % cv if cv is not None else "n/a"
            lines.append("  %-26s %14s %14s" % (label, ms, cs))
            csv_rows.append([pol, key, ms, cs])
        lines.append("")
    lines.append("Per worker, at the end of the load; mean of the finalize "
                 "and skip runs (teardown: per exit policy).")
    lines.append("Model: wrk over HTTP; CPython: the same request shapes in a "
                 "loop (no HTTP).  CPython's teardown is timed from outside "
                 "(wait4): it includes the kernel's exit, the model's does "
                 "not.  Collections: the workers' own, from their first "
                 "request on.")
    text = "\n".join(lines) + "\n"
    return text, csv_rows


def validate(a):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = a.out or os.path.join("results", "validate-" + stamp)
    model_out = os.path.join(out, "model")
    cpy_out = os.path.join(out, "cpython")
    pols = ",".join(p for p in a.policies.split(",") if p)
    cmd = [sys.executable, os.path.join(HERE, "runner.py"),
           "--policies", pols, "--exits", a.exits,
           "--workers", str(a.workers), "--scale", "%g" % a.scale,
           "--requests", str(a.requests), "--out", model_out]
    if a.workload:
        cmd += ["--workload", a.workload]
    sys.stderr.write("validate: the model (scripts/runner.py) into %s\n"
                     % model_out)
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.stderr.write("validate: the model's runs failed (status %d)\n"
                         % r.returncode)
    sys.stderr.write("validate: CPython (%s) into %s\n" % (a.python, cpy_out))
    run_matrix(a, cpy_out)
    text, rows = compare(model_out, cpy_out)
    with open(os.path.join(out, "comparison.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "comparison.csv"), "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    sys.stdout.write("\n" + text)
    sys.stderr.write("validate: results in %s (comparison.txt)\n" % out)
    return 0 if r.returncode == 0 else 1


def main(argv):
    a = parse_args(argv)
    if a.cell_run:
        return cell_main(a)
    if a.compare:
        text, _ = compare(*a.compare)
        sys.stdout.write(text)
        return 0
    if a.validate:
        return validate(a)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = a.out or os.path.join("results", "cpython-" + stamp)
    rows = run_matrix(a, out)
    sys.stderr.write("cpython: %d runs; results in %s\n" % (len(rows), out))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
