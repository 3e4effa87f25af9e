#!/usr/bin/env python3
"""cpython_gc_heap.py -- CPython's side of bench_gc.c's gc_full_ms_1m.

Builds the heap tests/bench/bench_gc.c builds with the runtime (same object
counts, same shape, same order), then times gc.collect() over it, best of 3.
Prints `name: value unit` lines; bench_gc.c reads cpython_gc_full_ms_1m.

The heap: 100000 units of 10 tracked containers each, 1000 chunk lists of
100 units, one registry list holding the chunks: 1001001 tracked objects,
1001003 with module app and its dict.
A unit is a web app's pair of model objects:
  a = User()     a.__dict__: id (int), name, email (unique str), active
                 (True), tags (list of 3 shared str), meta, peer (= b)
  meta           dict of str: created (unique str), source, locale (shared
                 str), children (list of 4 small ints)
  b = Profile()  b.__dict__: title (unique str), score (float), scores
                 (list of 2 floats and a shared one), headers
  headers        dict of str: content-type (shared), x-id (unique str),
                 vary (list of 2 shared str)
Every 8th unit also has b.parent = a, so a -> a.__dict__ -> b -> b.__dict__
-> a is a cycle: 4 x 12500 = 50000 objects, 5% of the heap.  The registry
keeps every unit alive, so a collection visits all of them and frees none.
The registry is a local variable (bench_gc.c: a reference held in C), made
first, and, once built, also module "app"'s global: the generation list
stays in allocation order, as both collectors leave it.

Instances' __dict__ is forced (a.__dict__) because the runtime's instances
always have one (CPython 3.11 otherwise keeps attributes inline).  The
interpreter's own objects are frozen (gc.freeze()) before the build, so the
collection visits the benchmark heap only, as the runtime's does.
"""
import gc
import os
import sys
import time
import types

N_UNITS = 100000
CHUNK = 100
CYCLE_EVERY = 8
RUNS = 3

TAGS = ("admin", "staff", "guest", "beta", "ops")


class User:
    pass


class Profile:
    pass


def build():
    registry = []
    chunk = None
    for i in range(N_UNITS):
        if i % CHUNK == 0:
            chunk = []
            registry.append(chunk)
        a = User()
        ad = a.__dict__
        ad["id"] = 100000 + i
        ad["name"] = "user-%d" % i
        ad["email"] = "user%d@example.com" % i
        ad["active"] = True
        ad["tags"] = [TAGS[i % 5], TAGS[(i + 1) % 5], TAGS[(i + 2) % 5]]
        meta = {"created": "2024-01-%02d" % (i % 28 + 1), "source": "web",
                "locale": "en_US"}
        meta["children"] = [i % 7, i % 11, i % 13, i % 17]
        ad["meta"] = meta
        b = Profile()
        bd = b.__dict__
        bd["title"] = "title %d" % i
        bd["score"] = i * 0.5
        bd["scores"] = [i * 0.25, i * 0.125, 1.5]
        headers = {"content-type": "text/html", "x-id": "req-%d" % i}
        headers["vary"] = ["accept", "cookie"]
        bd["headers"] = headers
        if i % CYCLE_EVERY == 0:
            bd["parent"] = a
        ad["peer"] = b
        chunk.append(a)
    return registry


def main():
    gc.disable()
    gc.collect()
    gc.freeze()
    t0 = time.perf_counter()
    registry = build()
    app = types.ModuleType("app")       # as bench_gc.c: a module global too
    sys.modules["app"] = app
    app.registry = registry
    del app
    build_ms = (time.perf_counter() - t0) * 1e3
    tracked = len(gc.get_objects())     # generations 0-2, not the frozen
    best = None
    collected = 0
    for _ in range(RUNS):
        t0 = time.perf_counter()
        collected = gc.collect()
        ms = (time.perf_counter() - t0) * 1e3
        best = ms if best is None or ms < best else best
    print("cpython_version: %d.%d.%d version" % sys.version_info[:3])
    print("cpython_build_ms_1m: %.1f ms" % build_ms)
    print("cpython_gc_tracked_1m: %d objects" % tracked)
    print("cpython_gc_collected_1m: %d objects" % collected)
    print("cpython_gc_full_ms_1m: %.3f ms" % best)
    sys.stdout.flush()
    # Leave as a forked worker may: freeing the heap is not measured here.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
