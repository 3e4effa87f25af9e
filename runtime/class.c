/*
 * class.c -- classes, their instances (with an attribute dict, or with
 * fixed __slots__), functions and modules: the containers a web app's
 * import leaves in the heap.  All are tracked from birth.  Field counts
 * follow CPython's structs loosely so object sizes are of the same order.
 */
#include "object.h"

#include <string.h>

#include "internal.h"

/* Generic helpers for objects that are a run of object pointers after the
 * header: traverse, clear and dealloc walk fields [0, n). */
typedef struct {
    rt_obj_t ob;
    rt_obj_t *f[];
} fields_obj_t;

static int
fields_traverse(rt_obj_t *o, size_t n, rt_visit_fn visit, void *arg)
{
    fields_obj_t *x = (fields_obj_t *)o;
    for (size_t i = 0; i < n; i++) {
        if (x->f[i]) {
            int r = visit(x->f[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

static void
fields_clear(rt_obj_t *o, size_t n)
{
    fields_obj_t *x = (fields_obj_t *)o;
    for (size_t i = 0; i < n; i++) {
        rt_obj_t *v = x->f[i];
        RT_WK_PAYLOAD_AT(&x->f[i]);
        x->f[i] = NULL;
        rt_xdecref(v);
    }
}

static void
fields_dealloc(rt_obj_t *o, size_t n)
{
    gc_untrack(o);
    if (!rt__trash_begin(o))
        return;
    fields_clear(o, n);
    rt__gc_free(o);
    rt__trash_end();
}

/* ---- class ------------------------------------------------------------ */

typedef struct {
    rt_obj_t ob;
    rt_obj_t *name, *bases, *dict, *mro, *module;
    intptr_t version_tag;       /* CPython's tp_version_tag et al. */
    intptr_t pad[6];
} class_obj_t;
#define CLASS_NFIELDS 5

static void class_dealloc(rt_obj_t *o) { fields_dealloc(o, CLASS_NFIELDS); }
static int
class_traverse(rt_obj_t *o, rt_visit_fn v, void *a)
{
    return fields_traverse(o, CLASS_NFIELDS, v, a);
}
static int class_clear(rt_obj_t *o) { fields_clear(o, CLASS_NFIELDS);
                                      return 0; }

rt_type_t rt_class_type = { "type", RT_TPFLAG_GC, class_dealloc,
                            class_traverse, class_clear };

rt_obj_t *
rt_class_new(rt_heap_t *h, const char *name, rt_obj_t *bases)
{
    rt_obj_t *nm = rt_str_intern(h, name, strlen(name));
    rt_obj_t *dict = rt_dict_new(h);
    rt_obj_t *o = NULL;
    if (nm == NULL || dict == NULL)
        goto error;
    o = rt__gc_alloc(sizeof(class_obj_t), &rt_class_type);
    if (o == NULL)
        goto error;
    class_obj_t *c = (class_obj_t *)o;
    memset(&c->name, 0, sizeof(*c) - sizeof(rt_obj_t));
    c->name = nm;
    c->dict = dict;
    if (bases) {
        rt_incref(bases);
        c->bases = bases;
    }
    gc_track(o);
    return o;
error:
    rt_xdecref(nm);
    rt_xdecref(dict);
    return NULL;
}

rt_obj_t *
rt_class_dict(rt_obj_t *cls)
{
    return ((class_obj_t *)cls)->dict;
}

rt_obj_t *
rt_class_name(rt_obj_t *cls)
{
    return ((class_obj_t *)cls)->name;
}

/* ---- instance with __dict__ ------------------------------------------- */

typedef struct {
    rt_obj_t ob;
    rt_obj_t *cls, *dict, *weakrefs;
} instance_obj_t;
#define INST_NFIELDS 3

static void inst_dealloc(rt_obj_t *o) { fields_dealloc(o, INST_NFIELDS); }
static int
inst_traverse(rt_obj_t *o, rt_visit_fn v, void *a)
{
    return fields_traverse(o, INST_NFIELDS, v, a);
}
static int inst_clear(rt_obj_t *o) { fields_clear(o, INST_NFIELDS);
                                     return 0; }

rt_type_t rt_instance_type = { "object", RT_TPFLAG_GC, inst_dealloc,
                               inst_traverse, inst_clear };

rt_obj_t *
rt_instance_new(rt_heap_t *h, rt_obj_t *cls)
{
    rt_obj_t *dict = rt_dict_new(h);
    if (dict == NULL)
        return NULL;
    rt_obj_t *o = rt__gc_alloc(sizeof(instance_obj_t), &rt_instance_type);
    if (o == NULL) {
        rt_decref(dict);
        return NULL;
    }
    instance_obj_t *x = (instance_obj_t *)o;
    rt_incref(cls);                 /* CPython: heap types are refcounted */
    x->cls = cls;
    x->dict = dict;
    x->weakrefs = NULL;
    gc_track(o);
    return o;
}

rt_obj_t *
rt_instance_dict(rt_obj_t *inst)
{
    return ((instance_obj_t *)inst)->dict;
}

rt_obj_t *
rt_instance_class(rt_obj_t *inst)
{
    return ((instance_obj_t *)inst)->cls;
}

/* ---- instance with __slots__ ------------------------------------------ */

typedef struct {
    rt_obj_t ob;
    intptr_t nslots;
    rt_obj_t *cls;
    rt_obj_t *slots[];
} slots_obj_t;

static size_t
slots_nfields(rt_obj_t *o)
{
    return (size_t)((slots_obj_t *)o)->nslots + 1;
}

/* Fields start at cls, so view the object from nslots on. */
static void
slots_dealloc(rt_obj_t *o)
{
    gc_untrack(o);
    if (!rt__trash_begin(o))
        return;
    slots_obj_t *x = (slots_obj_t *)o;
    for (intptr_t i = 0; i < x->nslots; i++)
        rt_xdecref(x->slots[i]);
    rt_xdecref(x->cls);
    rt__gc_free(o);
    rt__trash_end();
}

static int
slots_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    slots_obj_t *x = (slots_obj_t *)o;
    rt_obj_t **f = &x->cls;
    for (size_t i = 0; i < slots_nfields(o); i++) {
        if (f[i]) {
            int r = visit(f[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

static int
slots_clear(rt_obj_t *o)
{
    slots_obj_t *x = (slots_obj_t *)o;
    rt_obj_t **f = &x->cls;
    for (size_t i = 0; i < slots_nfields(o); i++) {
        rt_obj_t *v = f[i];
        RT_WK_PAYLOAD_AT(&f[i]);
        f[i] = NULL;
        rt_xdecref(v);
    }
    return 0;
}

rt_type_t rt_slots_type = { "object(__slots__)", RT_TPFLAG_GC,
                            slots_dealloc, slots_traverse, slots_clear };

rt_obj_t *
rt_slots_new(rt_heap_t *h, rt_obj_t *cls, size_t n)
{
    (void)h;
    rt_obj_t *o = rt__gc_alloc(sizeof(slots_obj_t) + n * sizeof(rt_obj_t *),
                               &rt_slots_type);
    if (o == NULL)
        return NULL;
    slots_obj_t *x = (slots_obj_t *)o;
    x->nslots = (intptr_t)n;
    rt_incref(cls);
    x->cls = cls;
    for (size_t i = 0; i < n; i++)
        x->slots[i] = NULL;
    gc_track(o);
    return o;
}

int
rt_slots_set(rt_obj_t *inst, size_t i, rt_obj_t *v)
{
    slots_obj_t *x = (slots_obj_t *)inst;
    if ((intptr_t)i >= x->nslots)
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
    return (intptr_t)i < x->nslots ? x->slots[i] : NULL;
}

size_t
rt_slots_len(rt_obj_t *inst)
{
    return (size_t)((slots_obj_t *)inst)->nslots;
}

/* ---- function --------------------------------------------------------- */

typedef struct {
    rt_obj_t ob;
    rt_obj_t *name, *code, *globals, *defaults, *kwdefaults, *closure,
             *doc, *dict, *module, *qualname;
    intptr_t version;
} function_obj_t;
#define FUNC_NFIELDS 10

static void func_dealloc(rt_obj_t *o) { fields_dealloc(o, FUNC_NFIELDS); }
static int
func_traverse(rt_obj_t *o, rt_visit_fn v, void *a)
{
    return fields_traverse(o, FUNC_NFIELDS, v, a);
}
static int func_clear(rt_obj_t *o) { fields_clear(o, FUNC_NFIELDS);
                                     return 0; }

rt_type_t rt_function_type = { "function", RT_TPFLAG_GC, func_dealloc,
                               func_traverse, func_clear };

rt_obj_t *
rt_function_new(rt_heap_t *h, rt_obj_t *name, rt_obj_t *code,
                rt_obj_t *globals)
{
    (void)h;
    rt_obj_t *o = rt__gc_alloc(sizeof(function_obj_t), &rt_function_type);
    if (o == NULL)
        return NULL;
    function_obj_t *f = (function_obj_t *)o;
    memset(&f->name, 0, sizeof(*f) - sizeof(rt_obj_t));
    rt_incref(name);
    f->name = name;
    rt_incref(name);
    f->qualname = name;
    rt_incref(code);
    f->code = code;
    rt_incref(globals);
    f->globals = globals;
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

typedef struct {
    rt_obj_t ob;
    rt_obj_t *name, *dict;
    intptr_t pad[2];            /* md_state, md_weaklist ... */
} module_obj_t;
#define MOD_NFIELDS 2

static void mod_dealloc(rt_obj_t *o) { fields_dealloc(o, MOD_NFIELDS); }
static int
mod_traverse(rt_obj_t *o, rt_visit_fn v, void *a)
{
    return fields_traverse(o, MOD_NFIELDS, v, a);
}
static int mod_clear(rt_obj_t *o) { fields_clear(o, MOD_NFIELDS);
                                    return 0; }

rt_type_t rt_module_type = { "module", RT_TPFLAG_GC, mod_dealloc,
                             mod_traverse, mod_clear };

rt_obj_t *
rt_module_new(rt_heap_t *h, const char *name)
{
    rt_obj_t *nm = rt_str_intern(h, name, strlen(name));
    rt_obj_t *dict = rt_dict_new(h);
    rt_obj_t *o = NULL;
    if (nm == NULL || dict == NULL)
        goto error;
    o = rt__gc_alloc(sizeof(module_obj_t), &rt_module_type);
    if (o == NULL)
        goto error;
    module_obj_t *m = (module_obj_t *)o;
    memset(&m->name, 0, sizeof(*m) - sizeof(rt_obj_t));
    m->name = nm;
    m->dict = dict;
    gc_track(o);
    if (rt_dict_set_str(h, dict, "__name__", nm) < 0
        || rt_dict_set(h->modules, nm, o) < 0) {
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
