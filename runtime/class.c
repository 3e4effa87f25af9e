/*
 * class.c -- classes (heap types), their instances, functions and their
 * code, modules, and the two helper objects a class brings along (weak
 * references, descriptors): what a web app's import leaves in the heap,
 * laid out as CPython 3.11/3.12 lays it out (sizes: rt__mode, object.c).
 *
 * A class is one large block (PyHeapTypeObject: 960 bytes in 3.11, 976 in
 * 3.12, with its gc head) that embeds the type of its instances, as
 * CPython's ob_type of an instance is its class.  type() also makes the
 * class's bases and mro tuples, puts "__doc__" (and, in a class that
 * introduces them, "__dict__" and "__weakref__" descriptors) in its dict,
 * gives it shared keys for its instances' attributes (768 bytes), and
 * registers a weak reference to it in its base's subclass table (a dict
 * keyed by the class's address).  A class costs some 2.2 KiB that way.
 *
 * A plain instance (3.11/3.12 "inline values"): the object is its header
 * (plus, in 3.11, a weakref slot) after a gc head and a pre-header; its
 * attribute values sit in a separate values block indexed by the class's
 * shared keys; a dict object is made only when rt_instance_dict() asks.
 * There the model departs from CPython in one detail: the dict it makes
 * is an ordinary table holding the attributes (CPython keeps a split
 * table sharing the class's keys and the values block).
 *
 * A __slots__ instance is its header and one word per slot.  All
 * containers here are tracked from birth.  The order in which traverse
 * visits references is CPython's (gc.get_referents gives the same order),
 * so a request that reads the first N children reads the same ones.
 */
#include "object.h"

#include <string.h>

#include "internal.h"

/* ---- weak references and descriptors ---------------------------------- */

/* PyWeakReference: 64 bytes after its gc head. */
typedef struct {
    rt_obj_t ob;
    rt_obj_t *object;           /* borrowed: the referent */
    rt_obj_t *callback;
    intptr_t hash;
    rt_obj_t *prev, *next;      /* the referent's list of weakrefs */
    intptr_t vectorcall;
} weakref_obj_t;

/* The class a weakref or a descriptor points into. */
typedef struct class_obj class_obj_t;
static rt_obj_t **class_weaklist(rt_obj_t *cls);

static void
weakref_dealloc(rt_obj_t *o)
{
    weakref_obj_t *w = (weakref_obj_t *)o;
    gc_untrack(o);
    if (w->object != NULL) {        /* clear_weakref(): unlink from the
                                       referent (writes it) */
        rt_obj_t **list = class_weaklist(w->object);
        if (*list == o) {
            RT_WK_PAYLOAD_AT(list);
            *list = NULL;
        }
    }
    rt_xdecref(w->callback);
    rt__gc_free(o);
}

static int
weakref_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    weakref_obj_t *w = (weakref_obj_t *)o;
    return w->callback ? visit(w->callback, arg) : 0;
}

static int
weakref_clear(rt_obj_t *o)
{
    weakref_obj_t *w = (weakref_obj_t *)o;
    rt_obj_t *cb = w->callback;
    RT_WK_PAYLOAD_AT(&w->callback);
    w->callback = NULL;
    rt_xdecref(cb);
    return 0;
}

rt_type_t rt_weakref_type = { "weakref", RT_TPFLAG_GC, weakref_dealloc,
                              weakref_traverse, weakref_clear, NULL, NULL };

static rt_obj_t *
weakref_new(rt_obj_t *cls)
{
    rt_obj_t *o = rt__gc_alloc(sizeof(weakref_obj_t), &rt_weakref_type);
    if (o == NULL)
        return NULL;
    weakref_obj_t *w = (weakref_obj_t *)o;
    memset(&w->object, 0, sizeof(*w) - sizeof(rt_obj_t));
    w->object = cls;
    w->hash = -1;
    *class_weaklist(cls) = o;       /* a write to the class, as CPython's */
    gc_track(o);
    return o;
}

/* PyGetSetDescrObject / PyMemberDescrObject: 48 bytes after the gc head;
 * a class's "__dict__", "__weakref__" and its slots' member descriptors.
 * d_type refers back to the class: a cycle, as in CPython. */
typedef struct {
    rt_obj_t ob;
    rt_obj_t *d_type, *d_name, *d_qualname;
    intptr_t d_member;
} descr_obj_t;

static void
descr_dealloc(rt_obj_t *o)
{
    descr_obj_t *d = (descr_obj_t *)o;
    gc_untrack(o);
    rt_xdecref(d->d_type);
    rt_xdecref(d->d_name);
    rt_xdecref(d->d_qualname);
    rt__gc_free(o);
}

static int
descr_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    descr_obj_t *d = (descr_obj_t *)o;
    return d->d_type ? visit(d->d_type, arg) : 0;
}

static int
descr_refs(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    descr_obj_t *d = (descr_obj_t *)o;
    int r = descr_traverse(o, visit, arg);
    if (r == 0 && d->d_name)
        r = visit(d->d_name, arg);
    return r;
}

static int
descr_clear(rt_obj_t *o)
{
    descr_obj_t *d = (descr_obj_t *)o;
    rt_obj_t *t = d->d_type;
    RT_WK_PAYLOAD_AT(&d->d_type);
    d->d_type = NULL;
    rt_xdecref(t);
    return 0;
}

rt_type_t rt_descr_type = { "descriptor", RT_TPFLAG_GC, descr_dealloc,
                            descr_traverse, descr_clear, descr_refs, NULL };

static rt_obj_t *
descr_new(rt_obj_t *cls, rt_obj_t *name)
{
    rt_obj_t *o = rt__gc_alloc(sizeof(descr_obj_t), &rt_descr_type);
    if (o == NULL)
        return NULL;
    descr_obj_t *d = (descr_obj_t *)o;
    rt_incref(cls);
    d->d_type = cls;
    rt_incref(name);
    d->d_name = name;
    d->d_qualname = NULL;
    d->d_member = 0;
    gc_track(o);
    return o;
}

/* ---- class ------------------------------------------------------------ */

/* The fields the model uses; the block is rt__mode.class_size bytes (the
 * rest stands for CPython's slot tables and is zero). */
struct class_obj {
    rt_obj_t ob;
    rt_type_t tp;               /* the type of its instances */
    rt_obj_t *dict, *cache, *mro, *bases, *base, *module;  /* traversed */
    rt_obj_t *name, *qualname, *slots;
    rt_obj_t *subclasses;       /* tp_subclasses: {address: weakref} */
    rt_obj_t *weaklist;         /* tp_weaklist: the weakref to it */
    rt_keys_t *cached_keys;     /* ht_cached_keys, or NULL */
    intptr_t nslots;            /* a __slots__ class: its slots; else -1 */
};
#define CLS(o) ((class_obj_t *)(o))
#define CLASS_NTRAVERSE 6       /* dict .. module */

static rt_obj_t **
class_weaklist(rt_obj_t *cls)
{
    return &CLS(cls)->weaklist;
}

/* The static class "object": in CPython's binary, not the heap.  Its
 * subclass table is a heap dict (a root).  Its type is GC-able, so it
 * carries a gc head, never tracked (CPython: type_is_gc() is false for a
 * static type). */
static struct {
    gc_head_t gc;
    class_obj_t cls;
} object_static;
#define object_s (object_static.cls)
extern rt_type_t rt_class_type;

static void
class_unregister(rt_obj_t *o);

static void
class_dealloc(rt_obj_t *o)
{
    class_obj_t *c = CLS(o);
    gc_untrack(o);
    if (!rt__trash_begin(o))
        return;
    class_unregister(o);            /* remove_all_subclasses */
    rt_obj_t **f = &c->dict;
    for (int i = 0; i < CLASS_NTRAVERSE; i++)
        rt_xdecref(f[i]);
    rt_xdecref(c->name);
    rt_xdecref(c->qualname);
    rt_xdecref(c->slots);
    rt_xdecref(c->subclasses);
    rt__keys_free(c->cached_keys);
    rt__gc_free(o);
    rt__trash_end();
}

/* CPython's type_traverse: dict, cache, mro, bases, base, module. */
static int
class_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    rt_obj_t **f = &CLS(o)->dict;
    for (int i = 0; i < CLASS_NTRAVERSE; i++) {
        if (f[i]) {
            int r = visit(f[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

static int
class_refs(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    class_obj_t *c = CLS(o);
    int r = class_traverse(o, visit, arg);
    rt_obj_t *more[4] = { c->name, c->qualname, c->slots, c->subclasses };
    for (int i = 0; i < 4 && r == 0; i++)
        if (more[i])
            r = visit(more[i], arg);
    return r;
}

/* CPython's type_clear: empty the dict, drop the mro and the module; the
 * bases stay (the class leaves its bases' subclass tables when freed). */
static int
class_clear(rt_obj_t *o)
{
    class_obj_t *c = CLS(o);
    if (c->dict)
        rt_dict_clear(c->dict);
    rt_obj_t *mro = c->mro, *mod = c->module;
    RT_WK_PAYLOAD_AT(&c->mro);
    RT_WK_PAYLOAD_AT(&c->module);
    c->mro = c->module = NULL;
    rt_xdecref(mro);
    rt_xdecref(mod);
    return 0;
}

rt_type_t rt_class_type = { "type", RT_TPFLAG_GC, class_dealloc,
                            class_traverse, class_clear, class_refs, NULL };

static rt_obj_t *
address_key(rt_obj_t *cls)
{
    return rt__int_alloc((int64_t)(uintptr_t)cls);
}

/* add_subclass(): base.__subclasses__ gets {id(cls): weakref(cls)}. */
static int
class_register(rt_obj_t *cls, rt_obj_t *base)
{
    class_obj_t *b = CLS(base);
    if (b->subclasses == NULL && (b->subclasses = rt_dict_new(rt__heap))
                                 == NULL)
        return -1;
    rt_obj_t *key = address_key(cls), *ref = weakref_new(cls);
    return rt_dict_set_steal(b->subclasses, key, ref);
}

static void
class_unregister(rt_obj_t *o)
{
    class_obj_t *c = CLS(o);
    if (c->base == NULL || CLS(c->base)->subclasses == NULL)
        return;
    rt__dict_del_int(CLS(c->base)->subclasses, (int64_t)(uintptr_t)o);
}

/* Instances of every class share these slots (the class embeds a type
 * made from one of the two templates). */
static void inst_dealloc(rt_obj_t *o);
static int inst_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg);
static int inst_clear(rt_obj_t *o);
static void slots_dealloc(rt_obj_t *o);
static int slots_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg);
static int slots_clear(rt_obj_t *o);

rt_type_t rt_instance_type = { "object", RT_TPFLAG_GC | RT_TPFLAG_PREHEADER,
                               inst_dealloc, inst_traverse, inst_clear,
                               NULL, NULL };
rt_type_t rt_slots_type = { "object(__slots__)", RT_TPFLAG_GC,
                            slots_dealloc, slots_traverse, slots_clear,
                            NULL, NULL };

void
rt__object_class_init(rt_heap_t *h)
{
    memset(&object_static, 0, sizeof object_static);
    object_s.ob.type = &rt_class_type;
    object_s.ob.refcnt = rt__mode.immortal_statics ? RT_IMMORTAL_REFCNT : 1;
    object_s.nslots = 0;            /* object() has no __dict__ */
    gc__init_static(&object_s.ob);
    h->object_class = &object_s.ob;
}

rt_obj_t **
rt__object_subclasses(void)
{
    return &object_s.subclasses;
}

rt_obj_t *
rt_object_class(rt_heap_t *h)
{
    return h->object_class;
}

/* The mro tuple: (cls,) + base's mro, or (cls, object). */
static rt_obj_t *
mro_new(rt_obj_t *cls, rt_obj_t *base)
{
    rt_obj_t *bm = CLS(base)->mro;
    size_t n = bm ? rt_tuple_len(bm) : 1;
    rt_obj_t *t = rt_tuple_new(rt__heap, n + 1);
    if (t == NULL)
        return NULL;
    rt_incref(cls);
    rt_tuple_set_steal(t, 0, cls);
    for (size_t i = 0; i < n; i++) {
        rt_obj_t *x = bm ? rt_tuple_get(bm, i) : base;
        rt_incref(x);
        rt_tuple_set_steal(t, i + 1, x);
    }
    return t;
}

static int
dict_put_steal(rt_heap_t *h, rt_obj_t *d, const char *key, rt_obj_t *v)
{
    if (v == NULL)
        return -1;
    int r = rt_dict_set_str(h, d, key, v);
    rt_decref(v);
    return r;
}

/* type(name, bases, {}) for a dict class (names == NULL) or a __slots__
 * class. */
static rt_obj_t *
class_make(rt_heap_t *h, const char *name, rt_obj_t *bases, rt_obj_t *names)
{
    rt_obj_t *nm = rt_str_new(h, name, strlen(name));
    rt_obj_t *o = NULL, *base;
    if (nm == NULL)
        return NULL;
    if (bases == NULL) {
        bases = rt_tuple_new(h, 1);
        if (bases == NULL)
            goto error;
        rt_incref(h->object_class);
        rt_tuple_set_steal(bases, 0, h->object_class);
    } else {
        if (rt_tuple_len(bases) == 0)
            goto error;
        rt_incref(bases);
    }
    base = rt_tuple_get(bases, 0);
    if (base->type != &rt_class_type
        || (names == NULL && CLS(base)->nslots > 0)
        || (names != NULL && CLS(base)->nslots < 0))
        goto error_bases;           /* slots and a dict in one instance:
                                       not modelled */
    rt_obj_t *dict = rt_dict_new(h);
    if (dict == NULL)
        goto error_bases;
    o = rt__gc_alloc(rt__mode.class_size, &rt_class_type);
    if (o == NULL) {
        rt_decref(dict);
        goto error_bases;
    }
    class_obj_t *c = CLS(o);
    memset(&c->tp, 0, rt__mode.class_size - sizeof(rt_obj_t));
    c->tp = names == NULL ? rt_instance_type : rt_slots_type;
    c->tp.kind = names == NULL ? &rt_instance_type : &rt_slots_type;
    rt_incref(nm);
    c->name = nm;
    rt_incref(nm);
    c->qualname = nm;
    c->bases = bases;
    rt_incref(base);
    c->base = base;
    c->dict = dict;
    c->nslots = -1;
    if (names != NULL) {
        size_t inherited = CLS(base)->nslots > 0 ? (size_t)CLS(base)->nslots
                                                  : 0;
        c->nslots = (intptr_t)(inherited + rt_tuple_len(names));
        rt_incref(names);
        c->slots = names;
    }
    gc_track(o);
    if ((c->mro = mro_new(o, base)) == NULL)
        goto error_obj;
    if (names == NULL && CLS(base)->nslots >= 0) {
        /* The class introduces __dict__ and __weakref__. */
        rt_obj_t *k1 = rt_str_intern(h, "__dict__", 8);
        rt_obj_t *k2 = rt_str_intern(h, "__weakref__", 11);
        int r = k1 && k2 ? 0 : -1;
        if (r == 0)
            r = rt_dict_set_steal(dict, k1, descr_new(o, k1));
        else
            rt_xdecref(k1);
        if (r == 0)
            r = rt_dict_set_steal(dict, k2, descr_new(o, k2));
        else
            rt_xdecref(k2);
        if (r < 0)
            goto error_obj;
    }
    if (names != NULL) {
        rt_incref(names);
        if (dict_put_steal(h, dict, "__slots__", names) < 0)
            goto error_obj;
        for (size_t i = 0; i < rt_tuple_len(names); i++) {
            rt_obj_t *sn = rt_tuple_get(names, i);
            rt_obj_t *d = descr_new(o, sn);
            if (d == NULL || rt_dict_set(dict, sn, d) < 0) {
                rt_xdecref(d);
                goto error_obj;
            }
            rt_decref(d);
        }
    }
    rt_incref(rt_none(h));
    if (dict_put_steal(h, dict, "__doc__", rt_none(h)) < 0)
        goto error_obj;
    if (names == NULL && (c->cached_keys = rt__keys_new_shared()) == NULL)
        goto error_obj;
    if (class_register(o, base) < 0)
        goto error_obj;
    rt_decref(nm);
    return o;

error_obj:
    rt_decref(nm);
    rt_decref(o);
    return NULL;
error_bases:
    rt_decref(bases);
error:
    rt_decref(nm);
    return NULL;
}

rt_obj_t *
rt_class_new(rt_heap_t *h, const char *name, rt_obj_t *bases)
{
    return class_make(h, name, bases, NULL);
}

rt_obj_t *
rt_class_new_slots(rt_heap_t *h, const char *name, rt_obj_t *bases,
                   rt_obj_t *names)
{
    if (names == NULL || names->type != &rt_tuple_type)
        return NULL;
    return class_make(h, name, bases, names);
}

rt_obj_t *
rt_class_dict(rt_obj_t *cls)
{
    return CLS(cls)->dict;
}

rt_obj_t *
rt_class_name(rt_obj_t *cls)
{
    return CLS(cls)->name;
}

rt_obj_t *
rt_class_mro(rt_obj_t *cls)
{
    return CLS(cls)->mro;
}

void *
rt__class_block(const rt_obj_t *o)
{
    return CLS(o)->cached_keys;
}

/* ---- plain instances -------------------------------------------------- */

#define INST_CLASS(o)   ((rt_obj_t *)((char *)(o)->type \
                                      - offsetof(class_obj_t, tp)))

rt_obj_t *
rt_instance_class(rt_obj_t *inst)
{
    return INST_CLASS(inst);
}

rt_obj_t *
rt_instance_new(rt_heap_t *h, rt_obj_t *cls)
{
    (void)h;
    class_obj_t *c = CLS(cls);
    if (cls->type != &rt_class_type || c->cached_keys == NULL)
        return NULL;
    size_t n;
    void *values = rt__values_new(c->cached_keys, &n);
    if (values == NULL)
        return NULL;
    rt_obj_t *o = rt__gc_alloc(rt__mode.instance_size, &c->tp);
    if (o == NULL) {
        rt__values_free(values);
        return NULL;
    }
    memset(o + 1, 0, rt__mode.instance_size - sizeof(rt_obj_t));
    RT_PREHEADER(o)->values = values;
    RT_PREHEADER(o)->dict = NULL;
    rt_incref(cls);                 /* heap types are refcounted */
    gc_track(o);
    return o;
}

static rt_keys_t *
inst_keys(rt_obj_t *o)
{
    return CLS(INST_CLASS(o))->cached_keys;
}

/* Drop the attribute values (keeping the block) and the dict. */
static void
inst_clear_values(rt_obj_t *o)
{
    rt_preheader_t *p = RT_PREHEADER(o);
    if (p->values) {
        rt_obj_t **slots = rt__values_slots(p->values);
        for (long i = 0; i < rt__keys_nentries(inst_keys(o)); i++) {
            rt_obj_t *v = slots[i];
            RT_WK_PAYLOAD_AT(&slots[i]);
            slots[i] = NULL;
            rt_xdecref(v);
        }
    }
    rt_obj_t *d = p->dict;
    RT_WK_PAYLOAD_AT(&p->dict);
    p->dict = NULL;
    rt_xdecref(d);
}

static void
inst_dealloc(rt_obj_t *o)
{
    rt_obj_t *cls = INST_CLASS(o);
    gc_untrack(o);
    if (!rt__trash_begin(o))
        return;
    inst_clear_values(o);
    rt__values_free(RT_PREHEADER(o)->values);
    rt__gc_free(o);
    rt_decref(cls);
    rt__trash_end();
}

/* subtype_traverse: the values (slot order), the dict, then the class. */
static int
inst_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    rt_preheader_t *p = RT_PREHEADER(o);
    int r;
    if (p->values) {
        rt_obj_t **slots = rt__values_slots(p->values);
        for (long i = 0; i < rt__keys_nentries(inst_keys(o)); i++)
            if (slots[i] && (r = visit(slots[i], arg)) != 0)
                return r;
    }
    if (p->dict && (r = visit(p->dict, arg)) != 0)
        return r;
    return visit(INST_CLASS(o), arg);
}

static int
inst_clear(rt_obj_t *o)
{
    inst_clear_values(o);
    return 0;
}

int
rt_instance_has_dict(const rt_obj_t *inst)
{
    return RT_PREHEADER(inst)->dict != NULL;
}

rt_obj_t *
rt_instance_dict(rt_obj_t *o)
{
    rt_preheader_t *p = RT_PREHEADER(o);
    if (p->dict == NULL) {
        rt_obj_t *d = rt__dict_from_values(inst_keys(o), p->values);
        if (d == NULL)
            return NULL;
        rt__values_free(p->values);
        RT_WK_SPAN(p, sizeof *p, RT_WK_PAYLOAD);
        p->values = NULL;
        p->dict = d;
    }
    return p->dict;
}

int
rt_instance_setattr(rt_obj_t *o, rt_obj_t *name, rt_obj_t *v)
{
    rt_preheader_t *p = RT_PREHEADER(o);
    if (p->dict == NULL && name->type == &rt_str_type) {
        long ix = rt__keys_index(inst_keys(o), name, 1);
        if (ix >= 0) {
            rt_obj_t **slots = rt__values_slots(p->values);
            rt_obj_t *old = slots[ix];
            rt_incref(v);
            RT_WK_PAYLOAD_AT(&slots[ix]);
            slots[ix] = v;
            if (old == NULL)
                rt__values_order_add(p->values, ix);
            rt_xdecref(old);
            return 0;
        }
    }
    /* The shared keys are full (or the name is no str): CPython makes
     * the instance a dict of its own. */
    rt_obj_t *d = rt_instance_dict(o);
    return d ? rt_dict_set(d, name, v) : -1;
}

int
rt_instance_setattr_str(rt_heap_t *h, rt_obj_t *o, const char *name,
                        rt_obj_t *v)
{
    rt_obj_t *k = rt_str_intern(h, name, strlen(name));
    if (k == NULL)
        return -1;
    int r = rt_instance_setattr(o, k, v);
    rt_decref(k);
    return r;
}

rt_obj_t *
rt_instance_getattr(rt_obj_t *o, rt_obj_t *name)
{
    rt_preheader_t *p = RT_PREHEADER(o);
    if (p->dict)
        return rt_dict_get(p->dict, name);
    long ix = rt__keys_index(inst_keys(o), name, 0);
    return ix >= 0 ? rt__values_slots(p->values)[ix] : NULL;
}

void *
rt__instance_block(const rt_obj_t *o)
{
    return RT_PREHEADER(o)->values;
}

/* ---- __slots__ instances ---------------------------------------------- */

typedef struct {
    rt_obj_t ob;
    rt_obj_t *slots[];
} slots_obj_t;

#define NSLOTS(o)  ((size_t)CLS(INST_CLASS(o))->nslots)

static void
slots_dealloc(rt_obj_t *o)
{
    rt_obj_t *cls = INST_CLASS(o);
    gc_untrack(o);
    if (!rt__trash_begin(o))
        return;
    slots_obj_t *x = (slots_obj_t *)o;
    for (size_t i = 0; i < NSLOTS(o); i++)
        rt_xdecref(x->slots[i]);
    rt__gc_free(o);
    rt_decref(cls);
    rt__trash_end();
}

/* subtype_traverse: the slots in order, then the class. */
static int
slots_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    slots_obj_t *x = (slots_obj_t *)o;
    for (size_t i = 0; i < NSLOTS(o); i++) {
        if (x->slots[i]) {
            int r = visit(x->slots[i], arg);
            if (r)
                return r;
        }
    }
    return visit(INST_CLASS(o), arg);
}

static int
slots_clear(rt_obj_t *o)
{
    slots_obj_t *x = (slots_obj_t *)o;
    for (size_t i = 0; i < NSLOTS(o); i++) {
        rt_obj_t *v = x->slots[i];
        RT_WK_PAYLOAD_AT(&x->slots[i]);
        x->slots[i] = NULL;
        rt_xdecref(v);
    }
    return 0;
}

rt_obj_t *
rt_slots_new(rt_heap_t *h, rt_obj_t *cls)
{
    (void)h;
    class_obj_t *c = CLS(cls);
    if (cls->type != &rt_class_type || c->nslots < 0)
        return NULL;
    size_t n = (size_t)c->nslots;
    rt_obj_t *o = rt__gc_alloc(sizeof(slots_obj_t) + n * sizeof(rt_obj_t *),
                               &c->tp);
    if (o == NULL)
        return NULL;
    slots_obj_t *x = (slots_obj_t *)o;
    for (size_t i = 0; i < n; i++)
        x->slots[i] = NULL;
    rt_incref(cls);
    gc_track(o);
    return o;
}

int
rt_slots_set(rt_obj_t *inst, size_t i, rt_obj_t *v)
{
    slots_obj_t *x = (slots_obj_t *)inst;
    if (i >= NSLOTS(inst))
        return -1;
    rt_obj_t *old = x->slots[i];
    rt_incref(v);
    RT_WK_PAYLOAD_AT(&x->slots[i]);
    x->slots[i] = v;
    rt_xdecref(old);
    return 0;
}

rt_obj_t *
rt_slots_get(rt_obj_t *inst, size_t i)
{
    slots_obj_t *x = (slots_obj_t *)inst;
    return i < NSLOTS(inst) ? x->slots[i] : NULL;
}

size_t
rt_slots_len(rt_obj_t *inst)
{
    return NSLOTS(inst);
}

/* ---- code ------------------------------------------------------------- */

/* PyCodeObject (192 bytes in 3.11, 200 in 3.12, with the template's six
 * bytes of bytecode inline); not GC-able, no tp_traverse.  Its constants
 * and local names are tuples of their own, its local kinds a bytes. */
typedef struct {
    rt_obj_t ob;
    rt_obj_t *consts, *localsplusnames, *localspluskinds, *name, *qualname;
} code_obj_t;
#define CODE_NFIELDS 5

static void
code_dealloc(rt_obj_t *o)
{
    rt_obj_t **f = &((code_obj_t *)o)->consts;
    for (int i = 0; i < CODE_NFIELDS; i++)
        rt_xdecref(f[i]);
    rt__heap->nobjects--;
    rt__heap->ndeallocs++;
    rt__obj_free(o);
}

static int
code_refs(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    rt_obj_t **f = &((code_obj_t *)o)->consts;
    for (int i = 0; i < CODE_NFIELDS; i++) {
        if (f[i]) {
            int r = visit(f[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

rt_type_t rt_code_type = { "code", 0, code_dealloc, NULL, NULL, code_refs,
                           NULL };

static rt_obj_t *
tuple2(rt_heap_t *h, rt_obj_t *a, rt_obj_t *b)
{
    rt_obj_t *t = rt_tuple_new(h, 2);
    if (t == NULL)
        return NULL;
    rt_incref(a);
    rt_tuple_set_steal(t, 0, a);
    rt_incref(b);
    rt_tuple_set_steal(t, 1, b);
    return t;
}

rt_obj_t *
rt_code_new(rt_heap_t *h, rt_obj_t *name, rt_obj_t *blob)
{
    rt_obj_t *x = rt_str_intern(h, "x", 1), *n = rt_str_intern(h, "n", 1);
    rt_obj_t *consts = NULL, *names = NULL, *kinds = NULL, *o = NULL;
    static const uint8_t k2[2] = { 0x20, 0x20 };   /* CO_FAST_LOCAL */
    if (x && n) {
        consts = tuple2(h, blob, rt_none(h));
        names = tuple2(h, x, n);
        kinds = rt_bytes_new(h, k2, 2);
    }
    if (consts && names && kinds
        && (o = rt__obj_alloc(rt__mode.code_size)) != NULL) {
        memset(o, 0, rt__mode.code_size);
        rt__obj_init(o, &rt_code_type);
        code_obj_t *c = (code_obj_t *)o;
        c->consts = consts;
        c->localsplusnames = names;
        c->localspluskinds = kinds;
        rt_incref(name);
        c->name = name;
        rt_incref(name);
        c->qualname = name;
        consts = names = kinds = NULL;
    }
    rt_xdecref(consts);
    rt_xdecref(names);
    rt_xdecref(kinds);
    rt_xdecref(x);
    rt_xdecref(n);
    return o;
}

rt_obj_t *
rt_code_consts(rt_obj_t *code)
{
    return ((code_obj_t *)code)->consts;
}

/* ---- function --------------------------------------------------------- */

/* PyFunctionObject, fields in func_traverse's order, then the ones it
 * does not visit: 136 bytes (3.11); 3.12 appends func_typeparams (144). */
typedef struct {
    rt_obj_t ob;
    rt_obj_t *code, *globals, *builtins, *module, *defaults, *kwdefaults,
             *doc, *name, *dict, *closure, *annotations, *qualname;
    rt_obj_t *weakreflist;
    intptr_t vectorcall, version;
} function_obj_t;
#define FUNC_NFIELDS 12

static void
func_dealloc(rt_obj_t *o)
{
    gc_untrack(o);
    if (!rt__trash_begin(o))
        return;
    rt_obj_t **f = &((function_obj_t *)o)->code;
    for (int i = 0; i < FUNC_NFIELDS; i++)
        rt_xdecref(f[i]);
    rt__gc_free(o);
    rt__trash_end();
}

static int
func_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    rt_obj_t **f = &((function_obj_t *)o)->code;
    for (int i = 0; i < FUNC_NFIELDS; i++) {
        if (f[i]) {
            int r = visit(f[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

static int
func_clear(rt_obj_t *o)
{
    rt_obj_t **f = &((function_obj_t *)o)->code;
    for (int i = 0; i < FUNC_NFIELDS; i++) {
        rt_obj_t *v = f[i];
        f[i] = NULL;
        rt_xdecref(v);
    }
    return 0;
}

rt_type_t rt_function_type = { "function", RT_TPFLAG_GC, func_dealloc,
                               func_traverse, func_clear, NULL, NULL };

rt_obj_t *
rt_function_new(rt_heap_t *h, rt_obj_t *name, rt_obj_t *code,
                rt_obj_t *globals)
{
    rt_obj_t *o = rt__gc_alloc(rt__mode.function_size, &rt_function_type);
    if (o == NULL)
        return NULL;
    function_obj_t *f = (function_obj_t *)o;
    memset(&f->code, 0, rt__mode.function_size - sizeof(rt_obj_t));
    rt_incref(code);
    f->code = code;
    rt_incref(globals);
    f->globals = globals;
    rt_obj_t *mod = rt_dict_get_str(h, globals, "__name__");
    if (mod) {
        rt_incref(mod);
        f->module = mod;
    }
    rt_incref(rt_none(h));          /* the first constant is no str */
    f->doc = rt_none(h);
    rt_incref(name);
    f->name = name;
    rt_incref(name);
    f->qualname = name;
    gc_track(o);
    return o;
}

rt_obj_t *
rt_function_code(rt_obj_t *f)
{
    return ((function_obj_t *)f)->code;
}

rt_obj_t *
rt_function_globals(rt_obj_t *f)
{
    return ((function_obj_t *)f)->globals;
}

int
rt_function_set_defaults(rt_obj_t *o, rt_obj_t *defaults)
{
    function_obj_t *f = (function_obj_t *)o;
    rt_obj_t *old = f->defaults;
    rt_incref(defaults);
    RT_WK_PAYLOAD_AT(&f->defaults);
    f->defaults = defaults;
    rt_xdecref(old);
    return 0;
}

/* ---- module ----------------------------------------------------------- */

/* PyModuleObject: 56 bytes after the gc head. */
typedef struct {
    rt_obj_t ob;
    rt_obj_t *dict;
    void *def, *state;
    int *weak;                  /* md_weaklist: finalize's alive flag */
    rt_obj_t *name;
} module_obj_t;

static void
mod_dealloc(rt_obj_t *o)
{
    module_obj_t *m = (module_obj_t *)o;
    gc_untrack(o);
    if (!rt__trash_begin(o))
        return;
    if (m->weak)
        *m->weak = 0;               /* (finalize's own array, not the heap) */               /* the weakref dies with it */
    rt_xdecref(m->dict);
    rt_xdecref(m->name);
    rt__gc_free(o);
    rt__trash_end();
}

/* module_traverse: md_dict only. */
static int
mod_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    module_obj_t *m = (module_obj_t *)o;
    return m->dict ? visit(m->dict, arg) : 0;
}

static int
mod_refs(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    module_obj_t *m = (module_obj_t *)o;
    int r = mod_traverse(o, visit, arg);
    return r == 0 && m->name ? visit(m->name, arg) : r;
}

static int
mod_clear(rt_obj_t *o)
{
    module_obj_t *m = (module_obj_t *)o;
    rt_obj_t *d = m->dict;
    RT_WK_PAYLOAD_AT(&m->dict);
    m->dict = NULL;
    rt_xdecref(d);
    return 0;
}

rt_type_t rt_module_type = { "module", RT_TPFLAG_GC, mod_dealloc,
                             mod_traverse, mod_clear, mod_refs, NULL };

rt_obj_t *
rt_module_new(rt_heap_t *h, const char *name)
{
    static const char *const attrs[] = { "__doc__", "__package__",
                                         "__loader__", "__spec__" };
    rt_obj_t *nm = rt_str_new(h, name, strlen(name));
    rt_obj_t *dict = rt_dict_new(h);
    rt_obj_t *o = NULL;
    if (nm == NULL || dict == NULL)
        goto error;
    o = rt__gc_alloc(sizeof(module_obj_t), &rt_module_type);
    if (o == NULL)
        goto error;
    module_obj_t *m = (module_obj_t *)o;
    memset(&m->dict, 0, sizeof(*m) - sizeof(rt_obj_t));
    m->name = nm;
    m->dict = dict;
    gc_track(o);
    int r = rt_dict_set_str(h, dict, "__name__", nm);
    for (int i = 0; i < 4 && r == 0; i++)
        r = rt_dict_set_str(h, dict, attrs[i], rt_none(h));
    if (r < 0 || rt_dict_set(h->modules, nm, o) < 0) {
        rt_decref(o);
        return NULL;
    }
    return o;
error:
    rt_xdecref(nm);
    rt_xdecref(dict);
    return NULL;
}

rt_obj_t *
rt_module_dict(rt_obj_t *m)
{
    return ((module_obj_t *)m)->dict;
}

int **
rt__module_weak(rt_obj_t *m)
{
    return &((module_obj_t *)m)->weak;
}
