/*
 * dict.c -- the compact, insertion-ordered hash table of CPython 3.11/3.12.
 *
 * A dict object (48 bytes, as PyDictObject: used, a version tag, keys,
 * values) points to a keys block: a 32-byte header, a table of indices
 * (1, 2, 4 or 8 bytes each, by table size) and an array of entries in
 * insertion order.  As in CPython 3.11+, a table whose keys are all str
 * ("unicode" kind) has 16-byte entries (key, value: a str caches its own
 * hash); any other key turns it "general", with 24-byte entries (hash,
 * key, value).  An empty dict has no keys block at all (CPython's shared
 * Py_EMPTY_KEYS): {} is 64 bytes with its gc head; the first insert
 * allocates 8 slots.  Lookup probes the indices with CPython's
 * perturbation scheme; an index is DKIX_EMPTY, DKIX_DUMMY (deleted) or the
 * entry's position.  Deleting leaves a hole; a resize (to used * 3, 3.11's
 * GROWTH_RATE) compacts.
 *
 * Split keys (CPython's ht_cached_keys) serve a class's instances: 64
 * slots, at most 30 names, shared by every instance, whose values live in
 * a block of their own (see "Shared keys and values" below, and class.c).
 *
 * Tracking (CPython's MAINTAIN_TRACKING): a new dict is untracked and stays
 * so while it holds only atoms; it is tracked the first time it receives a
 * key or value that may be tracked.  A full collection untracks dicts that
 * hold only atoms again (rt__dict_maybe_untrack).
 */
#include "object.h"

#include <string.h>

#include "internal.h"

#define DKIX_EMPTY  (-1)
#define DKIX_DUMMY  (-2)
#define LOG2_MINSIZE 3
#define PERTURB_SHIFT 5

enum { KIND_GENERAL, KIND_UNICODE, KIND_SPLIT };

typedef struct {
    intptr_t hash;
    rt_obj_t *key;              /* NULL: a deleted entry */
    rt_obj_t *value;
} entry_t;

typedef struct {
    rt_obj_t *key;              /* a str: its hash is cached inside it */
    rt_obj_t *value;
} uentry_t;

/* PyDictKeysObject's header: 32 bytes. */
struct rt_keys {
    intptr_t refcnt;
    uint8_t log2_size;
    uint8_t log2_index_bytes;
    uint8_t kind;
    uint8_t pad;
    uint32_t version;
    intptr_t usable;            /* entries that may still be appended */
    intptr_t nentries;          /* entries used, holes included */
    uint8_t indices[];          /* then the entries */
};
typedef rt_keys_t keys_t;

typedef struct {
    rt_obj_t ob;
    intptr_t used;
    uint64_t version_tag;       /* CPython's ma_version_tag (not kept) */
    keys_t *keys;               /* NULL: empty, no table */
    void *values;               /* always NULL here: see class.c */
} dict_obj_t;

#define D(o) ((dict_obj_t *)(o))
#define DK_SIZE(k)      ((size_t)1 << (k)->log2_size)
#define DK_ENTRIES_AT(k) ((void *)(&(k)->indices[(size_t)1 \
                                                 << (k)->log2_index_bytes]))
#define DK_ENTRIES(k)   ((entry_t *)DK_ENTRIES_AT(k))
#define DK_UENTRIES(k)  ((uentry_t *)DK_ENTRIES_AT(k))
#define DK_GENERAL(k)   ((k)->kind == KIND_GENERAL)
#define USABLE_FRACTION(n)  (((n) << 1) / 3)

/* Entry i of any kind, through pointers to its fields. */
static inline rt_obj_t **
ent_key(keys_t *k, intptr_t i)
{
    return DK_GENERAL(k) ? &DK_ENTRIES(k)[i].key : &DK_UENTRIES(k)[i].key;
}

static inline rt_obj_t **
ent_value(keys_t *k, intptr_t i)
{
    return DK_GENERAL(k) ? &DK_ENTRIES(k)[i].value
                         : &DK_UENTRIES(k)[i].value;
}

static inline intptr_t
ent_hash(keys_t *k, intptr_t i)
{
    return DK_GENERAL(k) ? DK_ENTRIES(k)[i].hash
                         : rt_hash(DK_UENTRIES(k)[i].key);
}

static intptr_t
ix_get(const keys_t *k, size_t i)
{
    switch (k->log2_size <= 7 ? 0 : k->log2_size <= 15 ? 1
            : k->log2_size <= 31 ? 2 : 3) {
    case 0: return ((const int8_t *)k->indices)[i];
    case 1: return ((const int16_t *)(const void *)k->indices)[i];
    case 2: return ((const int32_t *)(const void *)k->indices)[i];
    default: return ((const int64_t *)(const void *)k->indices)[i];
    }
}

static void
ix_set(keys_t *k, size_t i, intptr_t ix)
{
    RT_WK_PAYLOAD_AT(k->indices + (i << (k->log2_index_bytes
                                         - k->log2_size)));
    switch (k->log2_size <= 7 ? 0 : k->log2_size <= 15 ? 1
            : k->log2_size <= 31 ? 2 : 3) {
    case 0: ((int8_t *)k->indices)[i] = (int8_t)ix; break;
    case 1: ((int16_t *)(void *)k->indices)[i] = (int16_t)ix; break;
    case 2: ((int32_t *)(void *)k->indices)[i] = (int32_t)ix; break;
    default: ((int64_t *)(void *)k->indices)[i] = (int64_t)ix; break;
    }
}

/* CPython's new_keys_object(): header + indices + usable entries. */
static keys_t *
keys_new(uint8_t log2_size, int kind)
{
    uint8_t width = log2_size <= 7 ? 0 : log2_size <= 15 ? 1
                    : log2_size <= 31 ? 2 : 3;
    size_t size = (size_t)1 << log2_size;
    size_t usable = USABLE_FRACTION(size);
    size_t ixbytes = size << width;
    size_t esize = kind == KIND_GENERAL ? sizeof(entry_t) : sizeof(uentry_t);
    keys_t *k = rt__obj_alloc(sizeof(keys_t) + ixbytes + usable * esize);
    if (k == NULL)
        return NULL;
    k->refcnt = 1;
    k->log2_size = log2_size;
    k->log2_index_bytes = (uint8_t)(log2_size + width);
    k->kind = (uint8_t)kind;
    k->pad = 0;
    k->version = 0;
    k->usable = (intptr_t)usable;
    k->nentries = 0;
    memset(k->indices, 0xff, ixbytes);     /* every index DKIX_EMPTY */
    memset(DK_ENTRIES_AT(k), 0, usable * esize);
    return k;
}

/* Find key: its slot in the index table and its entry index (or EMPTY). */
static intptr_t
lookup(keys_t *k, rt_obj_t *key, intptr_t hash, size_t *slot)
{
    size_t mask = DK_SIZE(k) - 1;
    size_t i = (size_t)hash & mask;
    size_t perturb = (size_t)hash;
    for (;;) {
        intptr_t ix = ix_get(k, i);
        if (ix == DKIX_EMPTY) {
            *slot = i;
            return DKIX_EMPTY;
        }
        if (ix >= 0) {
            rt_obj_t *ek = *ent_key(k, ix);
            if (ek == key
                || (ek != NULL && ent_hash(k, ix) == hash
                    && rt_eq(ek, key))) {
                *slot = i;
                return ix;
            }
        }
        perturb >>= PERTURB_SHIFT;
        i = (i * 5 + perturb + 1) & mask;
    }
}

/* First slot whose index is EMPTY or DUMMY, for a key known absent. */
static size_t
find_empty_slot(keys_t *k, intptr_t hash)
{
    size_t mask = DK_SIZE(k) - 1;
    size_t i = (size_t)hash & mask;
    size_t perturb = (size_t)hash;
    while (ix_get(k, i) >= 0) {
        perturb >>= PERTURB_SHIFT;
        i = (i * 5 + perturb + 1) & mask;
    }
    return i;
}

/* CPython's dictresize(): a table of the smallest power of two >= minsize
 * (8 at least), general unless every key is a str and unicode is asked. */
static int
dict_resize(dict_obj_t *d, size_t minsize, int unicode)
{
    uint8_t log2 = LOG2_MINSIZE;
    while (((size_t)1 << log2) < minsize)
        log2++;
    keys_t *old = d->keys;
    int kind = unicode && (old == NULL || !DK_GENERAL(old))
               ? KIND_UNICODE : KIND_GENERAL;
    keys_t *k = keys_new(log2, kind);
    if (k == NULL)
        return -1;
    intptr_t n = 0;
    for (intptr_t i = 0; old != NULL && i < old->nentries; i++) {
        rt_obj_t *key = *ent_key(old, i);
        if (key == NULL)
            continue;
        intptr_t hash = ent_hash(old, i);
        *ent_key(k, n) = key;
        *ent_value(k, n) = *ent_value(old, i);
        if (kind == KIND_GENERAL)
            DK_ENTRIES(k)[n].hash = hash;
        ix_set(k, find_empty_slot(k, hash), n);
        n++;
    }
    k->nentries = n;
    k->usable -= n;
    RT_WK_PAYLOAD_AT(&d->keys);
    d->keys = k;
    if (old != NULL)
        rt__obj_free(old);
    return 0;
}

static void
maintain_tracking(rt_obj_t *d, rt_obj_t *k, rt_obj_t *v)
{
    if (!gc_is_tracked(d) && (rt__may_be_tracked(k) || rt__may_be_tracked(v)))
        gc_track(d);
}

/* Drop every entry's references (the table itself is the caller's). */
static void
drop_entries(keys_t *k)
{
    for (intptr_t i = 0; k != NULL && i < k->nentries; i++) {
        rt_obj_t *key = *ent_key(k, i);
        if (key) {
            rt_decref(key);
            rt_decref(*ent_value(k, i));
        }
    }
}

static void
dict_dealloc(rt_obj_t *o)
{
    gc_untrack(o);
    if (!rt__trash_begin(o))
        return;
    keys_t *k = D(o)->keys;
    drop_entries(k);
    if (k != NULL)
        rt__obj_free(k);
    rt__gc_free(o);
    rt__trash_end();
}

/* As CPython 3.11: a unicode table visits only the values (strs hold no
 * references), a general one each value and then its key. */
static int
dict_traverse(rt_obj_t *o, rt_visit_fn visit, void *arg)
{
    keys_t *k = D(o)->keys;
    if (k == NULL)
        return 0;
    int general = DK_GENERAL(k);
    for (intptr_t i = 0; i < k->nentries; i++) {
        rt_obj_t *key = *ent_key(k, i);
        if (key == NULL)
            continue;
        int r = visit(*ent_value(k, i), arg);
        if (r == 0 && general)
            r = visit(key, arg);
        if (r)
            return r;
    }
    return 0;
}

/* CPython's PyDict_Clear: back to the empty keys, then drop the entries. */
void
rt_dict_clear(rt_obj_t *o)
{
    keys_t *old = D(o)->keys;
    RT_WK_PAYLOAD_AT(&D(o)->keys);
    RT_WK_PAYLOAD_AT(&D(o)->used);
    D(o)->keys = NULL;
    D(o)->used = 0;
    drop_entries(old);
    if (old != NULL)
        rt__obj_free(old);
}

static int
dict_clear(rt_obj_t *o)
{
    rt_dict_clear(o);
    return 0;
}

rt_type_t rt_dict_type = { "dict", RT_TPFLAG_GC, dict_dealloc,
                           dict_traverse, dict_clear, NULL, NULL };

rt_obj_t *
rt_dict_new(rt_heap_t *h)
{
    (void)h;
    rt_obj_t *o = rt__gc_alloc(sizeof(dict_obj_t), &rt_dict_type);
    if (o == NULL)
        return NULL;
    D(o)->used = 0;
    D(o)->version_tag = 0;
    D(o)->keys = NULL;
    D(o)->values = NULL;
    return o;                       /* untracked until it holds a container */
}

int
rt_dict_set(rt_obj_t *o, rt_obj_t *key, rt_obj_t *v)
{
    dict_obj_t *d = D(o);
    intptr_t hash = rt_hash(key);
    size_t slot;
    int is_str = key->type == &rt_str_type;
    if (hash == -1)
        return -1;
    if (d->keys == NULL) {          /* insert_to_emptydict */
        keys_t *k = keys_new(LOG2_MINSIZE,
                             is_str ? KIND_UNICODE : KIND_GENERAL);
        if (k == NULL)
            return -1;
        RT_WK_PAYLOAD_AT(&d->keys);
        d->keys = k;
    }
    intptr_t ix = lookup(d->keys, key, hash, &slot);
    if (ix >= 0) {
        rt_obj_t **vp = ent_value(d->keys, ix);
        rt_obj_t *old = *vp;
        rt_incref(v);
        RT_WK_PAYLOAD_AT(vp);
        *vp = v;
        maintain_tracking(o, key, v);
        rt_decref(old);
        return 0;
    }
    /* A str table given another key turns general, growing as it does
     * (CPython's insertion_resize(mp, 0)). */
    if (!is_str && !DK_GENERAL(d->keys)) {
        if (dict_resize(d, (size_t)d->used * 3, 0) < 0)
            return -1;
    } else if (d->keys->usable <= 0) {
        if (dict_resize(d, (size_t)d->used * 3, is_str) < 0)
            return -1;
    }
    keys_t *k = d->keys;
    slot = find_empty_slot(k, hash);
    intptr_t n = k->nentries;
    rt_incref(key);
    rt_incref(v);
    RT_WK_PAYLOAD_AT(ent_key(k, n));
    RT_WK_PAYLOAD_AT(ent_value(k, n));
    RT_WK_SPAN(k, sizeof *k, RT_WK_PAYLOAD);
    RT_WK_PAYLOAD_AT(&d->used);
    *ent_key(k, n) = key;
    *ent_value(k, n) = v;
    if (DK_GENERAL(k)) {
        RT_WK_PAYLOAD_AT(&DK_ENTRIES(k)[n].hash);
        DK_ENTRIES(k)[n].hash = hash;
    }
    ix_set(k, slot, n);
    k->nentries++;
    k->usable--;
    d->used++;
    maintain_tracking(o, key, v);
    return 0;
}

int
rt_dict_set_steal(rt_obj_t *d, rt_obj_t *k, rt_obj_t *v)
{
    int r = -1;
    if (k != NULL && v != NULL)
        r = rt_dict_set(d, k, v);
    rt_xdecref(k);
    rt_xdecref(v);
    return r;
}

int
rt_dict_set_str(rt_heap_t *h, rt_obj_t *d, const char *s, rt_obj_t *v)
{
    rt_obj_t *k = rt_str_intern(h, s, strlen(s));
    if (k == NULL)
        return -1;
    int r = rt_dict_set(d, k, v);
    rt_decref(k);
    return r;
}

rt_obj_t *
rt_dict_get(rt_obj_t *o, rt_obj_t *key)
{
    intptr_t hash = rt_hash(key);
    size_t slot;
    if (hash == -1 || D(o)->keys == NULL)
        return NULL;
    intptr_t ix = lookup(D(o)->keys, key, hash, &slot);
    return ix >= 0 ? *ent_value(D(o)->keys, ix) : NULL;
}

/* Probe for a str key with this text: no str is made, so the lookup
 * cannot fail for want of memory. */
rt_obj_t *
rt_dict_get_str(rt_heap_t *h, rt_obj_t *o, const char *s)
{
    keys_t *k = D(o)->keys;
    size_t len = strlen(s);
    (void)h;
    if (k == NULL)
        return NULL;
    intptr_t hash = rt__hash_text(s, len);
    size_t mask = DK_SIZE(k) - 1, i = (size_t)hash & mask;
    size_t perturb = (size_t)hash;
    for (;;) {
        intptr_t ix = ix_get(k, i);
        if (ix == DKIX_EMPTY)
            return NULL;
        if (ix >= 0) {
            rt_obj_t *ek = *ent_key(k, ix);
            if (ek != NULL && ek->type == &rt_str_type
                && ent_hash(k, ix) == hash && rt_str_len(ek) == len
                && memcmp(rt_str_data(ek), s, len) == 0)
                return *ent_value(k, ix);
        }
        perturb >>= PERTURB_SHIFT;
        i = (i * 5 + perturb + 1) & mask;
    }
}

int
rt_dict_del(rt_obj_t *o, rt_obj_t *key)
{
    dict_obj_t *d = D(o);
    intptr_t hash = rt_hash(key);
    size_t slot;
    if (hash == -1 || d->keys == NULL)
        return -1;
    intptr_t ix = lookup(d->keys, key, hash, &slot);
    if (ix < 0)
        return -1;
    rt_obj_t **kp = ent_key(d->keys, ix), **vp = ent_value(d->keys, ix);
    rt_obj_t *k = *kp, *v = *vp;
    ix_set(d->keys, slot, DKIX_DUMMY);
    RT_WK_PAYLOAD_AT(kp);
    RT_WK_PAYLOAD_AT(vp);
    RT_WK_PAYLOAD_AT(&d->used);
    *kp = *vp = NULL;
    d->used--;
    rt_decref(k);
    rt_decref(v);
    return 0;
}

int
rt__dict_del_int(rt_obj_t *o, int64_t value)
{
    dict_obj_t *d = D(o);
    keys_t *k = d->keys;
    if (k == NULL)
        return -1;
    intptr_t hash = value == -1 ? -2 : (intptr_t)value;
    size_t mask = DK_SIZE(k) - 1, i = (size_t)hash & mask;
    size_t perturb = (size_t)hash;
    for (;;) {
        intptr_t ix = ix_get(k, i);
        if (ix == DKIX_EMPTY)
            return -1;
        if (ix >= 0) {
            rt_obj_t **kp = ent_key(k, ix), **vp = ent_value(k, ix);
            if (*kp != NULL && (*kp)->type == &rt_int_type
                && rt_int_value(*kp) == value) {
                rt_obj_t *key = *kp, *v = *vp;
                ix_set(k, i, DKIX_DUMMY);
                RT_WK_PAYLOAD_AT(kp);
                RT_WK_PAYLOAD_AT(vp);
                RT_WK_PAYLOAD_AT(&d->used);
                *kp = *vp = NULL;
                d->used--;
                rt_decref(key);
                rt_decref(v);
                return 0;
            }
        }
        perturb >>= PERTURB_SHIFT;
        i = (i * 5 + perturb + 1) & mask;
    }
}

size_t
rt_dict_len(const rt_obj_t *o)
{
    return (size_t)D(o)->used;
}

size_t
rt_dict_keys_size(const rt_obj_t *o)
{
    return D(o)->keys ? DK_SIZE(D(o)->keys) : 0;
}

int
rt_dict_next(rt_obj_t *o, size_t *pos, rt_obj_t **k, rt_obj_t **v)
{
    keys_t *keys = D(o)->keys;
    while (keys != NULL && *pos < (size_t)keys->nentries) {
        size_t i = (*pos)++;
        rt_obj_t *key = *ent_key(keys, (intptr_t)i);
        if (key) {
            if (k)
                *k = key;
            if (v)
                *v = *ent_value(keys, (intptr_t)i);
            return 1;
        }
    }
    return 0;
}

void
rt__dict_maybe_untrack(rt_obj_t *o)
{
    keys_t *k = D(o)->keys;
    for (intptr_t i = 0; k != NULL && i < k->nentries; i++) {
        rt_obj_t *key = *ent_key(k, i);
        if (key == NULL)
            continue;
        if (rt__may_be_tracked(*ent_value(k, i))
            || (DK_GENERAL(k) && rt__may_be_tracked(key)))
            return;
    }
    gc_untrack(o);
}

void *
rt__dict_block(const rt_obj_t *o)
{
    return D(o)->keys;
}

/* CPython's _PyModule_ClearDict: every value but __builtins__ set to
 * None, names with one leading underscore first (a write to each entry,
 * and a decref of each old value). */
void
rt__module_clear_dict(rt_obj_t *o)
{
    for (int pass = 0; pass < 2; pass++) {
        keys_t *k = D(o)->keys;
        for (intptr_t i = 0; k != NULL && i < k->nentries; i++) {
            rt_obj_t *key = *ent_key(k, i), **vp = ent_value(k, i);
            if (key == NULL || key->type != &rt_str_type
                || *vp == rt_none(rt__heap))
                continue;
            const char *s = rt_str_data(key);
            int single = s[0] == '_' && s[1] != '_';
            if (pass == 0 ? !single : strcmp(s, "__builtins__") == 0)
                continue;
            rt_obj_t *old = *vp;
            rt_incref(rt_none(rt__heap));
            RT_WK_PAYLOAD_AT(vp);
            *vp = rt_none(rt__heap);
            rt_decref(old);
            k = D(o)->keys;         /* a decref may not resize it, but be
                                       safe: re-read the table */
        }
    }
}

/* ---- shared keys and values ------------------------------------------
 * CPython 3.11/3.12: a class whose instances have a __dict__ gets split
 * keys at creation (_PyDict_NewKeysForClass: 64 slots, usable set to
 * SHARED_KEYS_MAX_SIZE, 30).  Each new instance first shrinks usable by
 * one (down to 1: "it will shrink by one before each new object") and
 * takes a values block of nentries + usable slots behind a prefix of
 * round_up(slots + 2, 8) bytes that records the insertion order.  So the
 * first instances of a class carry larger blocks, and the later ones
 * nentries + 1 slots: 72 bytes for six attributes. */

#define SHARED_LOG2      6
#define SHARED_KEYS_MAX  30

keys_t *
rt__keys_new_shared(void)
{
    keys_t *k = keys_new(SHARED_LOG2, KIND_SPLIT);
    if (k != NULL)
        k->usable = SHARED_KEYS_MAX;
    return k;
}

void
rt__keys_free(keys_t *k)
{
    if (k == NULL)
        return;
    for (intptr_t i = 0; i < k->nentries; i++)
        rt_xdecref(DK_UENTRIES(k)[i].key);  /* the names; no values */
    rt__obj_free(k);
}

/* The values block: [order bytes ... | count | prefix] [slots]. */
#define V_PREFIX(v)   (((const uint8_t *)(v))[-1])
#define V_COUNT(v)    (((uint8_t *)(v))[-2])

void *
rt__values_new(keys_t *k, size_t *n)
{
    if (k->usable > 1) {
        RT_WK_PAYLOAD_AT(&k->usable);
        k->usable--;
    }
    size_t size = (size_t)(k->nentries + k->usable);
    size_t prefix = (size + 2 + 7) & ~(size_t)7;
    uint8_t *mem = rt__obj_alloc(prefix + size * sizeof(rt_obj_t *));
    if (mem == NULL)
        return NULL;
    memset(mem, 0, prefix + size * sizeof(rt_obj_t *));
    mem[prefix - 1] = (uint8_t)prefix;
    *n = size;
    return mem + prefix;
}

void
rt__values_free(void *values)
{
    if (values != NULL)
        rt__obj_free((uint8_t *)values - V_PREFIX(values));
}

rt_obj_t **
rt__values_slots(void *values)
{
    return (rt_obj_t **)values;
}

size_t
rt__values_len(const void *values)
{
    return ((const uint8_t *)values)[-2];
}

void
rt__values_order_add(void *values, long ix)
{
    uint8_t c = V_COUNT(values);
    RT_WK_PAYLOAD_AT((uint8_t *)values - 3 - (int)c);
    RT_WK_PAYLOAD_AT((uint8_t *)values - 2);
    ((uint8_t *)values)[-3 - (int)c] = (uint8_t)ix;
    V_COUNT(values) = (uint8_t)(c + 1);
}

long
rt__keys_index(keys_t *k, rt_obj_t *name, int add)
{
    intptr_t hash = rt_hash(name);
    size_t slot;
    if (hash == -1)
        return -1;
    intptr_t ix = lookup(k, name, hash, &slot);
    if (ix >= 0)
        return (long)ix;
    if (!add || k->usable <= 0 || name->type != &rt_str_type)
        return -1;
    slot = find_empty_slot(k, hash);
    ix = k->nentries;
    rt_incref(name);
    RT_WK_PAYLOAD_AT(&DK_UENTRIES(k)[ix].key);
    RT_WK_SPAN(k, sizeof *k, RT_WK_PAYLOAD);
    DK_UENTRIES(k)[ix].key = name;
    ix_set(k, slot, ix);
    k->nentries++;
    k->usable--;
    return (long)ix;
}

long
rt__keys_nentries(const keys_t *k)
{
    return (long)k->nentries;
}

rt_obj_t *
rt__keys_name(keys_t *k, long ix)
{
    return DK_UENTRIES(k)[ix].key;
}

rt_obj_t *
rt__dict_from_values(keys_t *k, void *values)
{
    rt_obj_t *d = rt_dict_new(rt__heap);
    if (d == NULL)
        return NULL;
    rt_obj_t **slots = rt__values_slots(values);
    size_t count = rt__values_len(values);
    for (size_t i = 0; i < count; i++) {
        long ix = ((uint8_t *)values)[-3 - (int)i];
        if (slots[ix] == NULL)
            continue;
        if (rt_dict_set(d, rt__keys_name(k, ix), slots[ix]) < 0) {
            rt_decref(d);
            return NULL;
        }
    }
    for (size_t i = 0; i < count; i++) {
        long ix = ((uint8_t *)values)[-3 - (int)i];
        rt_obj_t *v = slots[ix];
        RT_WK_PAYLOAD_AT(&slots[ix]);
        slots[ix] = NULL;
        rt_xdecref(v);
    }
    RT_WK_PAYLOAD_AT((uint8_t *)values - 2);
    V_COUNT(values) = 0;
    return d;
}
