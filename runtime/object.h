/*
 * object.h -- the runtime's objects: CPython's layout and refcounting.
 *
 * Every object starts with a refcount and a type pointer, in the object,
 * so reading an object (incref + decref) writes its page, as in CPython.
 * Containers of the GC-able types carry a 16-byte gc_head_t before the
 * object (CPython's PyGC_Head); see gc.h.  Immortal objects (PEP 683)
 * carry RT_IMMORTAL_REFCNT and are never written by incref/decref.
 *
 * References: a function returning rt_obj_t * returns a new reference
 * unless its comment says "borrowed"; a function ending in _steal takes
 * the caller's reference, and drops it on failure too.  Errors are NULL or
 * -1 (out of memory, bad index, missing key).
 */
#ifndef COWLAB_OBJECT_H
#define COWLAB_OBJECT_H

#include <stddef.h>
#include <stdint.h>

#include "wkinds.h"

typedef struct rt_type rt_type_t;
typedef struct rt_obj {
    intptr_t refcnt;
    rt_type_t *type;
} rt_obj_t;

typedef int (*rt_visit_fn)(rt_obj_t *o, void *arg);

#define RT_TPFLAG_GC        1u      /* has a gc_head_t; may be tracked */
#define RT_TPFLAG_PREHEADER 2u      /* 16 more bytes before the gc_head_t
                                       (CPython 3.11+'s managed dict) */

struct rt_type {
    const char *name;
    unsigned flags;
    void (*dealloc)(rt_obj_t *o);   /* refcount reached zero */
    /* CPython's tp_traverse, so what gc.get_referents() gives: call visit
     * on each referenced object; stop at a nonzero return.  NULL for the
     * types CPython gives none (atoms, code). */
    int (*traverse)(rt_obj_t *o, rt_visit_fn visit, void *arg);
    /* Drop every reference the object holds (breaks cycles); 0. */
    int (*clear)(rt_obj_t *o);
    /* Every reference, for rt_heap_walk(); NULL: traverse says it all. */
    int (*refs)(rt_obj_t *o, rt_visit_fn visit, void *arg);
    /* The static type this one is a case of (a class's instances: the
     * class embeds their type, as CPython's ob_type is the class); NULL:
     * itself.  rt_kind() and rt_type_name() report it. */
    const rt_type_t *kind;
};

extern rt_type_t rt_none_type, rt_bool_type, rt_int_type, rt_float_type,
                 rt_str_type, rt_bytes_type, rt_tuple_type, rt_list_type,
                 rt_dict_type, rt_class_type, rt_instance_type,
                 rt_slots_type, rt_function_type, rt_module_type,
                 rt_code_type, rt_weakref_type, rt_descr_type;

/*
 * refcnt values:
 *   1 .. RT_IMMORTAL_REFCNT - 1     mortal: the count, written by every
 *                                   incref and decref.
 *   RT_IMMORTAL_REFCNT              immortal (PEP 683): never written.
 *   RT_SHARED_BIT | n               --refcount split, an object alive when
 *                                   rt_before_fork() ran: n is its count
 *                                   then, frozen in the object; this
 *                                   process's increments and decrements
 *                                   go to its own table (rc.c), and the
 *                                   true count is n + the table's delta
 *                                   (rt_refcnt()).
 * Both special cases sit at or above RT_IMMORTAL_REFCNT, so incref and
 * decref of an ordinary object still make one compare; only the rare
 * branch tells the two apart.
 */
#define RT_IMMORTAL_REFCNT  ((intptr_t)1 << 40)
#define RT_SHARED_BIT       ((intptr_t)1 << 50)

/* Deallocate an object whose refcount reached zero. */
void rt_dealloc(rt_obj_t *o);
/* --refcount split (rc.c): one increment or decrement of a shared object,
 * into this process's table (the decrement frees the object when its true
 * count reaches zero); and the table's delta for o (0 if none). */
void rt__rc_incref_shared(rt_obj_t *o);
void rt__rc_decref_shared(rt_obj_t *o);
intptr_t rt__rc_delta(const rt_obj_t *o);

static inline int
rt_is_immortal(const rt_obj_t *o)
{
    return o->refcnt >= RT_IMMORTAL_REFCNT && o->refcnt < RT_SHARED_BIT;
}

/* 1 if o's count lives in this process's split table (see above). */
static inline int
rt_is_shared(const rt_obj_t *o)
{
    return o->refcnt >= RT_SHARED_BIT;
}

/* The true refcount: what refcnt says, plus this process's delta for a
 * shared object (RT_IMMORTAL_REFCNT for an immortal one).  Read the count
 * through this, never through o->refcnt. */
static inline intptr_t
rt_refcnt(const rt_obj_t *o)
{
    if (o->refcnt >= RT_SHARED_BIT)
        return o->refcnt - RT_SHARED_BIT + rt__rc_delta(o);
    return o->refcnt;
}

static inline void
rt_incref(rt_obj_t *o)
{
    if (o->refcnt >= RT_IMMORTAL_REFCNT) {      /* immortal or shared */
        if (o->refcnt >= RT_SHARED_BIT)
            rt__rc_incref_shared(o);
        return;
    }
    RT_WK_NOTE(&o->refcnt, RT_WK_REFCOUNT);
    o->refcnt++;
}

static inline void
rt_decref(rt_obj_t *o)
{
    if (o->refcnt >= RT_IMMORTAL_REFCNT) {      /* immortal or shared */
        if (o->refcnt >= RT_SHARED_BIT)
            rt__rc_decref_shared(o);
        return;
    }
    RT_WK_NOTE(&o->refcnt, RT_WK_REFCOUNT);
    if (--o->refcnt == 0)
        rt_dealloc(o);
}

static inline void
rt_xdecref(rt_obj_t *o)
{
    if (o != NULL)
        rt_decref(o);
}

static inline int
rt_is_gc(const rt_obj_t *o)
{
    return (o->type->flags & RT_TPFLAG_GC) != 0;
}

/* The static type of o: an instance of any class gives rt_instance_type
 * (or rt_slots_type), whatever its class. */
static inline const rt_type_t *
rt_kind(const rt_obj_t *o)
{
    return o->type->kind ? o->type->kind : o->type;
}

static inline const char *
rt_type_name(const rt_obj_t *o)
{
    return rt_kind(o)->name;
}

/* ---- the heap: one per process, like one interpreter ------------------ */

typedef struct rt_heap rt_heap_t;

/*
 * Which CPython the runtime mirrors, chosen once when the heap starts
 * (DESIGN.md "Versions"); nothing above the runtime branches on it.
 *   3.11  object layouts of 3.11 (str header 48 bytes, heap types 960,
 *         functions 152, code 192, instances 56 + a values block);
 *         None, True, False, small ints and interned strings are mortal:
 *         every reference writes their refcount.
 *   3.12  3.12's layouts (str 40, types 976, functions 160, code 200,
 *         instances 48); those singletons and every interned string are
 *         immortal (PEP 683), and a collection moves an immortal tracked
 *         object to the permanent generation the first time it meets it.
 */
typedef enum rt_python { RT_PY_311 = 311, RT_PY_312 = 312 } rt_python_t;
#define RT_PY_DEFAULT RT_PY_312

/*
 * Where the collector keeps its per-object state (DESIGN.md "Designs"),
 * chosen once when the heap starts; nothing above the runtime branches on
 * it.
 *   inline  CPython's layout: a 16-byte gc_head_t (the generation list's
 *           links, doubling as gc_refs during a collection) in front of
 *           every GC-able object.  A collection writes every header of the
 *           generations it visits, so every page holding one.
 *   side    the links and gc_refs live in a slot of a side table outside
 *           the heap's pages (next, prev, the object: 24 bytes); the
 *           object keeps only an 8-byte pointer to its slot, written once
 *           when it is made.  A collection writes slots, never an object.
 *   bitmap  no per-object links at all: one tracked bit and two
 *           generation bits per 16-byte granule in a bitmap per MiB of
 *           address space, and, during a collection only, a temporary
 *           table of gc_refs and visited bits.
 */
typedef enum rt_gc_layout {
    RT_GC_INLINE = 0, RT_GC_SIDE = 1, RT_GC_BITMAP = 2
} rt_gc_layout_t;
/*
 * Where refcounts go (DESIGN.md "Designs"):
 *   inline  in the object, as CPython does.
 *   split   objects alive when rt_before_fork() runs keep their count in
 *           the object, frozen there; every increment and decrement of
 *           them from then on goes to a table of this process's own (a
 *           forked worker's, after PEP 703's split count), and the object
 *           is freed when the sum reaches zero.  Objects made later use
 *           the inline count.
 */
typedef enum rt_refcount { RT_RC_INLINE = 0, RT_RC_SPLIT = 1 } rt_refcount_t;

typedef struct rt_opts {
    rt_python_t python;
    rt_gc_layout_t gc_layout;
    rt_refcount_t refcount;
} rt_opts_t;

/* The defaults: RT_PY_DEFAULT, inline, inline.  The test programs run in
 * every mode through the environment: COWLAB_GC_LAYOUT and
 * COWLAB_REFCOUNT, when set, give the layout and the refcount scheme (an
 * unknown value makes rt_heap_new_opts() fail, so a typo cannot pass for
 * the default). */
void rt_opts_default(rt_opts_t *o);
/* "inline", "side", "bitmap"; 0, or -1 for anything else. */
int rt_gc_layout_parse(const char *s, rt_gc_layout_t *out);
const char *rt_gc_layout_name(rt_gc_layout_t v);
/* "inline", "split"; 0, or -1 for anything else. */
int rt_refcount_parse(const char *s, rt_refcount_t *out);
const char *rt_refcount_name(rt_refcount_t v);
/* "3.11" or "3.12" (also "311", "312"); 0, or -1 for anything else. */
int rt_python_parse(const char *s, rt_python_t *out);
/* "3.11" or "3.12". */
const char *rt_python_name(rt_python_t v);

/* Start the runtime (allocator, collector, singletons) with the default
 * options; NULL if one is already running or memory ran out. */
rt_heap_t *rt_heap_new(void);
/* The same with options (NULL: the defaults). */
rt_heap_t *rt_heap_new_opts(const rt_opts_t *o);
rt_python_t rt_heap_python(const rt_heap_t *h);
rt_gc_layout_t rt_heap_gc_layout(const rt_heap_t *h);
rt_refcount_t rt_heap_refcount(const rt_heap_t *h);
/* Tear everything down without measuring (tests); see rt_finalize(). */
void rt_heap_free(rt_heap_t *h);
/* Live objects right now (allocations minus deallocations). */
size_t rt_heap_objects(const rt_heap_t *h);
/* sys.modules: a dict name -> module, the heap's roots.  Borrowed. */
rt_obj_t *rt_heap_modules(rt_heap_t *h);

/* Singletons (borrowed; incref to keep). */
rt_obj_t *rt_none(rt_heap_t *h);
rt_obj_t *rt_true(rt_heap_t *h);
rt_obj_t *rt_false(rt_heap_t *h);

/* ---- atoms ------------------------------------------------------------ */

/* Small ints (-5..256) are shared singletons, as in CPython.  They, None,
 * True and False live in static storage, outside the heap's arenas, as
 * CPython's live in its binary's data: writes to them copy no heap page. */
rt_obj_t *rt_int_new(rt_heap_t *h, int64_t v);
int64_t rt_int_value(const rt_obj_t *o);
rt_obj_t *rt_float_new(rt_heap_t *h, double v);
double rt_float_value(const rt_obj_t *o);
rt_obj_t *rt_str_new(rt_heap_t *h, const char *s, size_t len);
rt_obj_t *rt_str_from(rt_heap_t *h, const char *s);
/* The interned string equal to s: one object per distinct text. */
rt_obj_t *rt_str_intern(rt_heap_t *h, const char *s, size_t len);
const char *rt_str_data(const rt_obj_t *o);
size_t rt_str_len(const rt_obj_t *o);
rt_obj_t *rt_bytes_new(rt_heap_t *h, const void *p, size_t len);
size_t rt_bytes_len(const rt_obj_t *o);
const uint8_t *rt_bytes_data(const rt_obj_t *o);
/* Hash of a hashable atom or tuple (computed once for str and cached in
 * the object, lazily, as CPython does); -1 if unhashable. */
intptr_t rt_hash(rt_obj_t *o);
/* Value equality for atoms and tuples; identity for the rest. */
int rt_eq(rt_obj_t *a, rt_obj_t *b);

/* ---- tuple ------------------------------------------------------------ */

/* A tuple of n NULL items; fill it with rt_tuple_set_steal(). */
rt_obj_t *rt_tuple_new(rt_heap_t *h, size_t n);
void rt_tuple_set_steal(rt_obj_t *t, size_t i, rt_obj_t *v);
rt_obj_t *rt_tuple_get(const rt_obj_t *t, size_t i);    /* borrowed */
size_t rt_tuple_len(const rt_obj_t *t);

/* ---- list ------------------------------------------------------------- */

rt_obj_t *rt_list_new(rt_heap_t *h);
int rt_list_append(rt_obj_t *l, rt_obj_t *v);
int rt_list_append_steal(rt_obj_t *l, rt_obj_t *v);
int rt_list_insert(rt_obj_t *l, size_t i, rt_obj_t *v);
int rt_list_set(rt_obj_t *l, size_t i, rt_obj_t *v);
int rt_list_del(rt_obj_t *l, size_t i);
rt_obj_t *rt_list_pop(rt_obj_t *l);                      /* new ref */
rt_obj_t *rt_list_get(const rt_obj_t *l, size_t i);     /* borrowed */
size_t rt_list_len(const rt_obj_t *l);
size_t rt_list_allocated(const rt_obj_t *l);

/* ---- dict: insertion-ordered compact hash table (CPython 3.6+) -------- */

rt_obj_t *rt_dict_new(rt_heap_t *h);
int rt_dict_set(rt_obj_t *d, rt_obj_t *k, rt_obj_t *v);
int rt_dict_set_steal(rt_obj_t *d, rt_obj_t *k, rt_obj_t *v); /* both */
/* d[s] = v with s interned. */
int rt_dict_set_str(rt_heap_t *h, rt_obj_t *d, const char *s, rt_obj_t *v);
rt_obj_t *rt_dict_get(rt_obj_t *d, rt_obj_t *k);        /* borrowed */
rt_obj_t *rt_dict_get_str(rt_heap_t *h, rt_obj_t *d, const char *s);
int rt_dict_del(rt_obj_t *d, rt_obj_t *k);              /* -1: missing */
size_t rt_dict_len(const rt_obj_t *d);
size_t rt_dict_keys_size(const rt_obj_t *d);   /* hash table slots */
/* Iterate in insertion order: start with *pos = 0; borrowed k, v. */
int rt_dict_next(rt_obj_t *d, size_t *pos, rt_obj_t **k, rt_obj_t **v);
void rt_dict_clear(rt_obj_t *d);

/* ---- classes, instances, functions, modules --------------------------- */

/*
 * A class (a heap type): its name, bases (a tuple, or NULL for (object,)),
 * attribute dict, method resolution order, and the shared keys its
 * instances' attributes use.  Made as CPython's type() makes one: the
 * bases tuple and the mro tuple, "__doc__" in the dict, "__dict__" and
 * "__weakref__" descriptors in a class that introduces them, and a weak
 * reference to it in its base's subclass table.  The class's name is a
 * fresh string, as type()'s is (not interned).
 */
rt_obj_t *rt_class_new(rt_heap_t *h, const char *name, rt_obj_t *bases);
/* A class whose instances have fixed slots and no __dict__ (__slots__ =
 * names, a tuple of str, possibly empty; it is kept in the class dict as
 * "__slots__", and a member descriptor per name). */
rt_obj_t *rt_class_new_slots(rt_heap_t *h, const char *name,
                             rt_obj_t *bases, rt_obj_t *names);
rt_obj_t *rt_class_dict(rt_obj_t *cls);                 /* borrowed */
rt_obj_t *rt_class_name(rt_obj_t *cls);                 /* borrowed */
rt_obj_t *rt_class_mro(rt_obj_t *cls);                  /* borrowed */
/* The static class "object" every class derives from (borrowed). */
rt_obj_t *rt_object_class(rt_heap_t *h);

/*
 * An instance of a class made by rt_class_new() (CPython 3.11/3.12 "inline
 * values"): its attributes live in a values block sized from the class's
 * shared keys (which learn the attribute names), and a dict object exists
 * only once rt_instance_dict() asks for it.
 */
rt_obj_t *rt_instance_new(rt_heap_t *h, rt_obj_t *cls);
/* setattr(inst, name, v): name must be a str; 0 or -1 (out of memory). */
int rt_instance_setattr(rt_obj_t *inst, rt_obj_t *name, rt_obj_t *v);
int rt_instance_setattr_str(rt_heap_t *h, rt_obj_t *inst, const char *name,
                            rt_obj_t *v);
/* getattr on the instance itself (not the class), borrowed, or NULL. */
rt_obj_t *rt_instance_getattr(rt_obj_t *inst, rt_obj_t *name);
/* inst.__dict__ (borrowed): made on the first call, holding the
 * attributes from then on; NULL when out of memory. */
rt_obj_t *rt_instance_dict(rt_obj_t *inst);
/* 1 if inst.__dict__ has been made. */
int rt_instance_has_dict(const rt_obj_t *inst);
rt_obj_t *rt_instance_class(rt_obj_t *inst);            /* borrowed */
/* An instance of a class made by rt_class_new_slots(), every slot NULL;
 * NULL if cls has no slots layout. */
rt_obj_t *rt_slots_new(rt_heap_t *h, rt_obj_t *cls);
int rt_slots_set(rt_obj_t *inst, size_t i, rt_obj_t *v);
rt_obj_t *rt_slots_get(rt_obj_t *inst, size_t i);       /* borrowed */
size_t rt_slots_len(rt_obj_t *inst);
/* A code object, as compiling "def name(x=None, n=0): ..." makes one: its
 * constants (blob, None) in a tuple, its local names and their kinds;
 * blob stands for the bytecode.  Not GC-able, as in CPython. */
rt_obj_t *rt_code_new(rt_heap_t *h, rt_obj_t *name, rt_obj_t *blob);
rt_obj_t *rt_code_consts(rt_obj_t *code);               /* borrowed */
/* A function: name, code, globals (a module's dict; its "__name__" is the
 * function's __module__). */
rt_obj_t *rt_function_new(rt_heap_t *h, rt_obj_t *name, rt_obj_t *code,
                          rt_obj_t *globals);
rt_obj_t *rt_function_code(rt_obj_t *f);                /* borrowed */
rt_obj_t *rt_function_globals(rt_obj_t *f);             /* borrowed */
int rt_function_set_defaults(rt_obj_t *f, rt_obj_t *defaults);
/* A module as types.ModuleType(name) makes one (a global dict holding
 * __name__, __doc__, __package__, __loader__ and __spec__), registered in
 * sys.modules. */
rt_obj_t *rt_module_new(rt_heap_t *h, const char *name);
rt_obj_t *rt_module_dict(rt_obj_t *m);                  /* borrowed */

/* ---- immortality (PEP 683) -------------------------------------------- */

void rt_immortalize(rt_obj_t *o);
/* Make every object reachable from the roots or tracked by the collector
 * immortal (Cinder's immortalize_heap), the static singletons and small
 * ints too (3.11 has them mortal); returns how many of the heap's objects
 * were marked (the statics, not the heap's, are not counted), or -1 out
 * of memory (its stack): the heap is then only partly immortal and must
 * not be measured as an immortal one. */
long rt_immortalize_heap(rt_heap_t *h);

/* ---- designs: fork preparation, warm-up, what each costs -------------- */

/* The parent calls this right before fork(): under --refcount split every
 * live object is marked shared (a write to each, in the parent, before
 * any child exists), so the children's increments and decrements of it go
 * to their own tables.  Cheap to call again before a later fork: objects
 * already marked are only read.  Returns the objects marked now (0 under
 * inline refcounts), or -1 out of memory (its walk's stack). */
long rt_before_fork(rt_heap_t *h);

/* What rt_warmup() did, step by step (Ruby 3.3's Process.warmup). */
typedef struct rt_warmup {
    long collected;             /* 1. full collection: unreachable found */
    size_t promoted;            /* 2. tracked objects moved from the
                                   younger generations to the oldest */
    size_t hashes;              /* 3. str hashes computed and cached */
    size_t pools_released;      /* 4. empty pools whose pages were given
                                   back (madvise) */
    size_t arenas_released;     /*    empty arenas unmapped */
    size_t pages_released;      /*    pages those two gave back */
    size_t frozen;              /* 5. gc.freeze(), then the permanent
                                   generation's size (what no collection
                                   visits from now on) */
    double ms;                  /* the whole warm-up's wall time */
} rt_warmup_t;
/* A full collection, promote every tracked object to the oldest
 * generation, compute and cache every str's hash, release empty pools and
 * arenas, then freeze.  0, or -1: out of memory for the hashes step's
 * walk (some hashes cached; steps 4 and 5 not run), or called during a
 * collection (nothing done).  The promoted figure: see warmup.c. */
int rt_warmup(rt_heap_t *h, rt_warmup_t *out);

/* The memory each design costs, right now, in this process. */
typedef struct rt_overhead {
    size_t gc_objects;          /* GC-able objects alive */
    size_t gc_inline_bytes;     /* collector state inside object blocks:
                                   16 (inline), 8 (side), 0 (bitmap) per
                                   GC-able object */
    size_t gc_side_bytes;       /* collector state outside them: side
                                   slots, or bitmaps, mapped for it */
    size_t gc_side_pages;       /* pages of that mapping ever written
                                   (resident) */
    size_t rc_shared;           /* objects rt_before_fork() marked, still
                                   alive */
    size_t rc_table_entries;    /* objects in this process's split table */
    size_t rc_table_bytes;      /* that table's bytes (malloc'd, private) */
    size_t rc_fallbacks;        /* increments and decrements of shared
                                   objects written in the object for
                                   want of table memory */
} rt_overhead_t;
void rt_get_overhead(rt_heap_t *h, rt_overhead_t *out);

/* ---- walking the heap ------------------------------------------------- */

/* Called once per memory block of an object: its own block (for a
 * container it starts at the gc_head_t) and its item array or key table;
 * len is the allocator's block size (0 if unknown, e.g. under
 * RT_MALLOC_BYPASS). */
typedef void (*rt_walk_fn)(rt_obj_t *o, const void *block, size_t len,
                           void *arg);
/* Visit every object reachable from the roots or tracked by the collector
 * (the permanent generation included), once each.  Reads the heap and
 * writes nothing to it, so a master may walk its heap after fork without
 * copying a page.  Returns the objects visited, or -1 out of memory. */
long rt_heap_walk(rt_heap_t *h, rt_walk_fn fn, void *arg);

/* ---- teardown --------------------------------------------------------- */

typedef struct rt_teardown {
    /* In: called once Py_Finalize's work is done and before the runtime
     * releases what is left (a worker reads its pagemap here); may be
     * NULL.  Not timed. */
    void (*before_release)(void *arg);
    void *arg;
    /* Out: */
    double wall_ms;             /* Py_Finalize's work: from the start to
                                   the last collection and the interned
                                   strings; neither the release of what
                                   is left (the kernel's job at exit) nor
                                   time spent in the allocator's release
                                   hook (the caller's measuring) */
    long minflt;                /* minor faults in that span (getrusage) */
    size_t collections;         /* full collections it ran */
    size_t collected;           /* objects they found unreachable */
    size_t deallocated;         /* objects freed in all */
    size_t left;                /* objects never freed: immortal, frozen
                                   cycles, what they hold (the kernel
                                   unmaps them) */
} rt_teardown_t;

/*
 * What Py_Finalize does to the heap, in its order (CPython 3.11/3.12's
 * Py_FinalizeEx, finalize_modules, interpreter_clear):
 *   1. a full collection if the collector is enabled (gc.collect());
 *   2. every module in sys.modules replaced by None, then sys.modules
 *      emptied: a module nothing else holds dies by refcount;
 *   3. a full collection (even with the collector disabled);
 *   4. the global dict of every module still alive emptied, newest first
 *      (values set to None: names with one leading underscore first);
 *   5. two more full collections;
 *   6. the interned strings released (3.11: each one's refcount written
 *      and the table cleared; 3.12: immortal, left as they are).
 * No collection visits the permanent generation: frozen cycles are not
 * collected and are left, as in CPython.  Immortal objects are never
 * written.  Then what is left is released untimed (as the kernel unmaps a
 * process at exit) and the heap is gone.  st may be NULL; its
 * before_release and arg are read, the rest written.
 * 0, or -1 if its working memory ran out (the list of modules): the
 * globals of modules still alive were not cleared (the heap is released
 * all the same), so st's figures are not those of a teardown and must not
 * be reported as one.
 */
int rt_finalize(rt_heap_t *h, rt_teardown_t *st);
/* The os._exit(0) path: leave at once, writing nothing to the heap. */
_Noreturn void rt_skip_exit(int status);

#endif
