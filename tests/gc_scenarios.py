#!/usr/bin/env python3
"""gc_scenarios.py -- the collector scenarios of tests/check_gcfaith.c, run
in CPython, so the C test can compare our runtime's counts with CPython's.

Prints one line per measured value:  <scenario> <key> <int value>.
Every scenario starts with gc.disable() and gc.collect(), builds its objects
from plain lists, dicts, tuples and instances of plain classes, and measures
with the gc module only.  tests/check_gcfaith.c builds the same scenarios
with the runtime's C API, hard-codes the values CPython 3.11 gives, and runs
this script (from the repository root) to compare line by line.

Things that make a scenario equivalent in both (read before adding one):
- CPython 3.11+ stores a plain instance's attributes inline and creates its
  __dict__ only when asked (o.__dict__), as the runtime does
  (rt_instance_dict()).  Scenarios that ask for o.__dict__ measure the
  dict; the inline_* ones never ask.
- CPython counts a container toward gen 0 when it is allocated and uncounts
  it when it is freed, but lists, dicts and tuples come from (and go back
  to) free lists that bypass both; a full collection empties the free
  lists.  The runtime counts them the same way (s_freelists checks it);
  count scenarios start after a gc.collect() all the same, and watch for
  CPython's own hidden temporaries ([0] * 8 frees a list; put() allocates:
  read counts into a list made beforehand, report them at the end).
- CPython's own objects share the generation lists: scenarios count their
  own objects by id, or take deltas, or freeze the interpreter's objects
  first (gc.freeze()) so generation sizes are the scenario's own.
- Tuples are built at run time (tuple([...]) or (x, y) of variables): tuple
  constants belong to code objects and were untracked long ago.
"""
import gc
import sys

OUT = []


def put(scenario, key, value):
    OUT.append("%s %s %d" % (scenario, key, int(value)))


def fresh():
    gc.disable()
    gc.set_threshold(700, 10, 10)
    gc.collect()


class C:
    """A plain class: instances get a __dict__."""


class S:
    """A class with fixed slots: the runtime's rt_slots_new()."""
    __slots__ = ("a", "b")


def ring(n):
    """n lists, each holding the next, the last holding the first."""
    first = cur = []
    for _ in range(n - 1):
        nxt = []
        cur.append(nxt)
        cur = nxt
    cur.append(first)
    return first


def count0():
    return gc.get_count()[0]


# ---- cycles: what gc.collect() returns ----------------------------------

def s_self_list():
    fresh()
    a = []
    a.append(a)
    del a
    put("self_list", "collected", gc.collect())


def s_two_list_cycle():
    fresh()
    a = []
    b = [a]
    a.append(b)
    del a, b
    put("two_list_cycle", "collected", gc.collect())


def s_ring10():
    fresh()
    r = ring(10)
    del r
    put("ring10", "collected", gc.collect())


def s_instance_self_attr():
    # o -> o.__dict__ -> o.  o.__dict__ is forced first (see the top of the
    # file): without it CPython 3.11 keeps the attributes inline and counts
    # 1 object, not 2.
    fresh()
    o = C()
    d = o.__dict__
    put("instance_self_attr", "dict_tracked_empty", gc.is_tracked(d))
    o.me = o
    put("instance_self_attr", "dict_tracked_after", gc.is_tracked(d))
    del o, d
    put("instance_self_attr", "collected", gc.collect())


def s_instance_dict_self():
    # The instance dies by refcount; its dict refers to itself and stays.
    fresh()
    o = C()
    d = o.__dict__
    d["d"] = d
    del o, d
    put("instance_dict_self", "collected", gc.collect())


def s_slots_self():
    fresh()
    s = S()
    s.a = s
    del s
    put("slots_self", "collected", gc.collect())


def s_dict_self():
    fresh()
    d = {}
    d["self"] = d
    del d
    put("dict_self", "collected", gc.collect())


def s_kept_alive():
    fresh()
    a = []
    b = [a]
    a.append(b)
    keep = a
    del a, b
    put("kept_alive", "collected_held", gc.collect())
    del keep
    put("kept_alive", "collected_dropped", gc.collect())


def s_kept_alive_by_root():
    # A root container (think sys.modules) holds the cycle, then lets go.
    fresh()
    root = []
    r = ring(4)
    root.append(r)
    del r
    put("kept_alive_by_root", "collected_held", gc.collect())
    root.pop()
    put("kept_alive_by_root", "collected_dropped", gc.collect())


def s_cycle_with_live():
    # Garbage may refer to live objects; only the garbage is counted.
    fresh()
    live = []
    a = []
    a.append(a)
    a.append(live)
    del a
    put("cycle_with_live", "collected", gc.collect())
    put("cycle_with_live", "live_tracked", gc.is_tracked(live))


def s_cycle_with_untracked_dict():
    # {'a': 1} is never tracked: freed by refcount, not counted.
    fresh()
    a = []
    a.append(a)
    a.append({"a": 1})
    del a
    put("cycle_with_untracked_dict", "collected", gc.collect())


def s_cycle_with_atom_tuple():
    # The tuple of atoms is still tracked when the collection finds it
    # unreachable (untrack_tuples looks at survivors only): counted.
    fresh()
    a = []
    a.append(a)
    a.append(tuple([1, "x", None]))
    del a
    put("cycle_with_atom_tuple", "collected", gc.collect())


def s_cycle_with_untracked_tuple():
    # Same, but a first collection (the list still alive) untracked it.
    fresh()
    a = []
    a.append(a)
    a.append(tuple([1, "x", None]))
    put("cycle_with_untracked_tuple", "collected_held", gc.collect())
    del a
    put("cycle_with_untracked_tuple", "collected", gc.collect())


def s_tuple_in_cycle():
    fresh()
    a = []
    t = (a,)
    a.append(t)
    del a, t
    put("tuple_in_cycle", "collected", gc.collect())


def s_tree_parent_ptrs():
    # A dict node with a list of 3 child dicts pointing back at it.
    fresh()
    root = {"name": "root"}
    kids = []
    root["children"] = kids
    for i in range(3):
        kids.append({"parent": root, "name": "kid"})
    del root, kids
    put("tree_parent_ptrs", "collected", gc.collect())


def s_cross_gen_cycle():
    # a is old (gen 2), b young; a <-> b.  Younger collections see a's
    # reference to b as external; only a full collection frees them.
    fresh()
    a = []
    gc.collect()                        # a -> gen 2
    b = [a]
    a.append(b)
    del a, b
    put("cross_gen_cycle", "collected_gen0", gc.collect(0))
    put("cross_gen_cycle", "collected_gen1", gc.collect(1))
    put("cross_gen_cycle", "collected_gen2", gc.collect(2))


# ---- freeze -------------------------------------------------------------

def s_frozen_cycle():
    fresh()
    gc.freeze()
    base = gc.get_freeze_count()
    gc.unfreeze()
    r = ring(3)
    del r
    gc.freeze()
    put("frozen_cycle", "freeze_count_delta", gc.get_freeze_count() - base)
    put("frozen_cycle", "collected_frozen", gc.collect(2))
    gc.unfreeze()
    put("frozen_cycle", "freeze_count_after", gc.get_freeze_count())
    put("frozen_cycle", "collected_unfrozen", gc.collect(2))


def s_frozen_holds_young():
    # A young cycle referenced from a frozen list is kept alive by it.
    fresh()
    f = []
    gc.freeze()
    a = []
    a.append(a)
    f.append(a)
    del a
    put("frozen_holds_young", "collected_held", gc.collect())
    f.pop()
    put("frozen_holds_young", "collected_released", gc.collect())
    gc.unfreeze()


def s_frozen_dict_untrack():
    # A frozen dict of atoms is not untracked by collect(2): no collection
    # visits the permanent generation.
    fresh()
    d = {"a": []}
    d["a"] = 1
    gc.freeze()
    gc.collect(2)
    put("frozen_dict_untrack", "tracked_frozen", gc.is_tracked(d))
    gc.unfreeze()
    gc.collect(2)
    put("frozen_dict_untrack", "tracked_unfrozen", gc.is_tracked(d))


# ---- generations --------------------------------------------------------

def s_aging():
    # 100 lists in a holder (101 objects), counted by id in each generation.
    fresh()
    holder = [[] for _ in range(100)]
    ids = {id(holder)}
    ids.update(id(x) for x in holder)

    def mine(gen):
        return sum(1 for o in gc.get_objects(gen) if id(o) in ids)

    for stage, coll in (("new", None), ("after0", 0), ("after1", 1),
                        ("after2", 2)):
        if coll is not None:
            gc.collect(coll)
        for g in range(3):
            put("aging", "%s_gen%d" % (stage, g), mine(g))
    del holder


def s_manual_counts():
    fresh()
    gc.collect(0)
    gc.collect(0)
    c = gc.get_count()
    put("manual_counts", "after_00_count1", c[1])
    put("manual_counts", "after_00_count2", c[2])
    del c
    gc.collect(1)
    gc.collect(0)
    c = gc.get_count()
    put("manual_counts", "count0", c[0])
    put("manual_counts", "count1", c[1])
    put("manual_counts", "count2", c[2])


def s_stats():
    fresh()
    before = gc.get_stats()
    a = []
    b = [a]
    a.append(b)
    del a, b
    n = gc.collect(0)
    after = gc.get_stats()
    put("stats", "returned", n)
    for g in range(3):
        put("stats", "collections%d" % g,
            after[g]["collections"] - before[g]["collections"])
        put("stats", "collected%d" % g,
            after[g]["collected"] - before[g]["collected"])


def alloc_lists(scenario, k, holder):
    """Allocate k lists with automatic collection on; report counts and
    the automatic collections per generation."""
    base = [s["collections"] for s in gc.get_stats()]
    gc.collect()                        # counts 0, free lists empty
    gc.enable()
    for _ in range(k):
        holder.append([])
    gc.disable()
    c = gc.get_count()
    put(scenario, "count0", c[0])
    put(scenario, "count1", c[1])
    put(scenario, "count2", c[2])
    after = [s["collections"] for s in gc.get_stats()]
    put(scenario, "auto0", after[0] - base[0])
    put(scenario, "auto1", after[1] - base[1])
    put(scenario, "auto2", after[2] - base[2] - 1)  # minus our collect()


def s_threshold_10k():
    fresh()
    holder = []
    alloc_lists("threshold_10k", 10000, holder)


def s_threshold_100k():
    # Enough for 11 gen-1 collections and then a gen-2 one: the objects
    # promoted since the last full collection exceed 25% of the long-lived.
    fresh()
    holder = []
    alloc_lists("threshold_100k", 100000, holder)


def s_long_lived_rule():
    # 380000 long-lived lists: the gen-2 collection due at the 133rd
    # trigger waits until the pending ones reach 25% of them (145th).
    # The interpreter's own objects are frozen first so that the long-lived
    # total is the scenario's alone.
    fresh()
    gc.freeze()
    keep = [[] for _ in range(380000)]
    holder = []
    alloc_lists("long_lived_rule", 110000, holder)
    del keep, holder
    gc.unfreeze()
    gc.collect()


def s_threshold_disabled():
    # Past the threshold with the collector off, or with threshold 0.
    fresh()
    holder = []
    gc.collect()
    for _ in range(1000):
        holder.append([])
    put("threshold_disabled", "count0", count0())
    base = gc.get_stats()[0]["collections"]
    gc.set_threshold(0)                 # (its argument tuple is counted)
    gc.collect()
    gc.enable()
    for _ in range(1000):
        holder.append([])
    gc.disable()
    put("threshold_zero", "count0", count0())
    gc.set_threshold(700, 10, 10)
    put("threshold_zero", "auto0", gc.get_stats()[0]["collections"] - base)


def s_dealloc_count():
    # Deallocation uncounts, never below 0.  __slots__ instances: CPython
    # has no free list for them.  gc.get_count() builds a 3-tuple that goes
    # to the (just emptied) tuple free list, leaving gen 0 one higher: so
    # each reading is the last step of a run, and each run starts with
    # gc.collect(), which zeroes the count and empties the free lists.
    fresh()
    holder = []
    gc.collect()
    for _ in range(500):
        holder.append(S())
    put("dealloc_count", "after_alloc", count0())
    gc.collect()
    for _ in range(500):
        holder.append(S())
    for _ in range(300):
        holder.pop()
    put("dealloc_count", "after_free", count0())
    gc.collect()
    for _ in range(100):                # count is 0: stays 0
        holder.pop()
    for _ in range(5):
        holder.append(S())
    put("dealloc_count", "after_collect_free", count0())


# ---- tracking -----------------------------------------------------------

def s_is_tracked():
    fresh()
    put("is_tracked", "empty_dict", gc.is_tracked({}))
    put("is_tracked", "atom_dict", gc.is_tracked({"a": 1, "b": "x",
                                                  "c": None, "d": 2.5}))
    put("is_tracked", "list_dict", gc.is_tracked({"a": []}))
    put("is_tracked", "list", gc.is_tracked([]))
    put("is_tracked", "int", gc.is_tracked(12345))
    put("is_tracked", "str", gc.is_tracked("abc"))
    put("is_tracked", "instance", gc.is_tracked(C()))
    put("is_tracked", "slots_instance", gc.is_tracked(S()))
    t = tuple([1, "x", None])
    inner = tuple([1, 2])
    outer = (inner, 3)
    lt = ([],)
    k = tuple([4, 5])
    kd = {k: 1}
    put("is_tracked", "atom_tuple_before", gc.is_tracked(t))
    put("is_tracked", "nested_tuple_before", gc.is_tracked(outer))
    put("is_tracked", "tuple_key_dict_before", gc.is_tracked(kd))
    gc.collect()
    put("is_tracked", "atom_tuple_after", gc.is_tracked(t))
    put("is_tracked", "nested_inner_after", gc.is_tracked(inner))
    put("is_tracked", "nested_outer_after", gc.is_tracked(outer))
    put("is_tracked", "list_tuple_after", gc.is_tracked(lt))
    put("is_tracked", "tuple_key_after", gc.is_tracked(k))
    put("is_tracked", "tuple_key_dict_after", gc.is_tracked(kd))


def s_dict_untrack_full():
    # A dict that lost its container value stays tracked until a full
    # collection (only those untrack dicts, bpo-14775).
    fresh()
    d = {"a": []}
    d["a"] = 1
    put("dict_untrack_full", "tracked_initial", gc.is_tracked(d))
    gc.collect(0)
    put("dict_untrack_full", "tracked_after0", gc.is_tracked(d))
    gc.collect(1)
    put("dict_untrack_full", "tracked_after1", gc.is_tracked(d))
    gc.collect(2)
    put("dict_untrack_full", "tracked_after2", gc.is_tracked(d))
    d["b"] = []
    put("dict_untrack_full", "tracked_regained", gc.is_tracked(d))


def s_dict_tuple_value():
    # A young collection untracks the tuple, not the dict holding it.
    fresh()
    d = {"t": tuple([1, 2])}
    t = d["t"]
    put("dict_tuple_value", "dict_before", gc.is_tracked(d))
    gc.collect(0)
    put("dict_tuple_value", "tuple_after0", gc.is_tracked(t))
    put("dict_tuple_value", "dict_after0", gc.is_tracked(d))
    gc.collect(2)
    put("dict_tuple_value", "dict_after2", gc.is_tracked(d))


def s_instance_dict_tracking():
    fresh()
    o = C()
    d = o.__dict__
    put("instance_dict_tracking", "empty", gc.is_tracked(d))
    o.x = 1
    o.s = "abc"
    put("instance_dict_tracking", "atoms", gc.is_tracked(d))
    o.y = []
    put("instance_dict_tracking", "with_list", gc.is_tracked(d))
    del o.y
    gc.collect(2)
    put("instance_dict_tracking", "after_full", gc.is_tracked(d))
    put("instance_dict_tracking", "instance", gc.is_tracked(o))


def s_freelists():
    # Lists, dicts and small tuples freed onto CPython's free lists (80,
    # 80, 2000 per size) leave generation 0's count as it was, and those
    # handed out again do not raise it.  Counts relative to a first
    # reading (gc.get_count() itself leaves a 3-tuple on its free list);
    # read into a preallocated list, reported at the end (put() allocates).
    fresh()
    v = [0, 0, 0, 0, 0, 0, 0, 0]
    count0()
    base = count0()
    holder = []
    for _ in range(100):
        holder.append([])
    v[0] = count0() - base                                  # 101
    del holder                                              # 80 kept
    v[1] = count0() - base
    holder = []
    for _ in range(50):
        holder.append([])                                   # reused
    v[2] = count0() - base
    d = []
    for _ in range(100):
        d.append({})
    v[3] = count0() - base
    del d
    v[4] = count0() - base
    t = []
    for i in range(100):
        t.append((i, i))
    v[5] = count0() - base
    del t
    v[6] = count0() - base
    del holder
    gc.collect()                                            # empties them
    x = []
    v[7] = count0()
    del x
    for k, name in enumerate(("lists_made", "lists_freed", "lists_reused",
                              "dicts_made", "dicts_freed", "tuples_made",
                              "tuples_freed", "after_full")):
        put("freelists", name, v[k])


def s_inline_self_attr():
    # No __dict__ asked for: the cycle is the instance alone.
    fresh()
    o = C()
    o.me = o
    put("inline_self_attr", "has_dict", 0)     # (asking would make one)
    del o
    put("inline_self_attr", "collected", gc.collect())


def s_inline_count():
    # 100 instances with two attributes: 100 objects toward gen 0.
    fresh()
    holder = []
    gc.collect()
    for _ in range(100):
        o = C()
        o.x = 1
        o.y = "y"
        holder.append(o)
    put("inline_count", "count0", count0())
    for i in range(100):
        holder[i].nxt = holder[(i + 1) % 100]
    del holder, o
    put("inline_count", "collected_ring", gc.collect())


SCENARIOS = [
    s_self_list, s_two_list_cycle, s_ring10, s_instance_self_attr,
    s_instance_dict_self, s_slots_self, s_dict_self, s_kept_alive,
    s_kept_alive_by_root, s_cycle_with_live, s_cycle_with_untracked_dict,
    s_cycle_with_atom_tuple, s_cycle_with_untracked_tuple, s_tuple_in_cycle,
    s_tree_parent_ptrs, s_cross_gen_cycle, s_frozen_cycle,
    s_frozen_holds_young, s_frozen_dict_untrack, s_aging, s_manual_counts,
    s_stats, s_threshold_10k, s_threshold_100k, s_long_lived_rule,
    s_threshold_disabled, s_dealloc_count, s_is_tracked, s_dict_untrack_full,
    s_dict_tuple_value, s_instance_dict_tracking, s_inline_self_attr,
    s_inline_count, s_freelists,
]


# The semantics the runtime follows (DESIGN.md).  3.10 differs in one
# count, 3.13 in how instance dicts are tracked: not comparable.
VERSIONS = ((3, 11), (3, 12))
EXIT_OTHER_VERSION = 3                  # check_gcfaith.c skips on it


def main():
    if sys.implementation.name != "cpython" \
            or sys.version_info[:2] not in VERSIONS:
        sys.stderr.write("gc_scenarios.py: needs CPython 3.11 or 3.12, "
                         "this is %s %s\n" % (sys.implementation.name,
                                              sys.version.split()[0]))
        return EXIT_OTHER_VERSION
    for s in SCENARIOS:
        s()
    gc.set_threshold(700, 10, 10)
    gc.enable()
    sys.stdout.write("\n".join(OUT) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
