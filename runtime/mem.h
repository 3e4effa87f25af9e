/*
 * mem.h -- the runtime's small-object allocator, modelled on CPython's
 * obmalloc: arenas from mmap() carved into pools, each pool serving one
 * 16-byte size class up to MEM_SMALL_MAX bytes.  Larger requests come from
 * chunks the allocator maps itself (never from malloc), so that its pages
 * are the runtime's only.
 * The allocator is process-global, as obmalloc is: one heap per process.
 */
#ifndef COWLAB_MEM_H
#define COWLAB_MEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef MEM_SMALL_ARENAS                 /* the seeds' geometry */
#define MEM_ARENA_SIZE  ((size_t)256 << 10)
#define MEM_POOL_SIZE   ((size_t)4 << 10)
#else                                   /* CPython 3.10+ */
#define MEM_ARENA_SIZE  ((size_t)1 << 20)
#define MEM_POOL_SIZE   ((size_t)16 << 10)
#endif
#define MEM_ALIGNMENT   16
#define MEM_SMALL_MAX   512
#define MEM_NCLASSES    (MEM_SMALL_MAX / MEM_ALIGNMENT)
#define MEM_POOLS_PER_ARENA (MEM_ARENA_SIZE / MEM_POOL_SIZE)

/* Size class index of a request of n bytes (1..MEM_SMALL_MAX). */
#define MEM_SIZE2CLASS(n)   (((n) - 1) / MEM_ALIGNMENT)
#define MEM_CLASS2SIZE(i)   (((size_t)(i) + 1) * MEM_ALIGNMENT)

typedef struct mem_stats {
    size_t arenas_allocated;        /* mmap()ed since mem_init() */
    size_t arenas_released;         /* munmap()ed since mem_init() */
    size_t arenas_live;
    size_t pools_used;              /* some blocks allocated, some free */
    size_t pools_full;              /* every block allocated */
    size_t pools_empty;             /* no block allocated, pool kept */
    size_t pools_unused;            /* never carved in a live arena */
    size_t class_pools[MEM_NCLASSES];   /* used + full pools per class */
    size_t class_blocks[MEM_NCLASSES];  /* blocks in use per class */
    size_t blocks_in_use;           /* small blocks handed out */
    size_t bytes_in_use;            /* their size-class bytes */
    size_t large_in_use;            /* large blocks */
    size_t large_bytes;             /* their bytes, 16-byte headers and
                                       rounding to 16 included */
    size_t allocs, frees;           /* calls since mem_init() */
} mem_stats_t;

typedef struct mem_range {
    uintptr_t start, end;           /* [start, end), page aligned */
} mem_range_t;

/* Set up the allocator; 0 or -1.  Calling it twice without mem_fini() fails. */
int mem_init(void);
/* Release every arena and every tracked large block. */
void mem_fini(void);
/* n bytes aligned to 16, or NULL (n == 0 gives a 1-byte block). */
void *mem_alloc(size_t n);
/* Give back a block from mem_alloc/mem_realloc; NULL is ignored. */
void mem_free(void *p);
/* Resize a block, moving it when its size class changes; NULL on failure
 * (the old block is left intact). */
void *mem_realloc(void *p, size_t n);
/* Bytes of the block p (its size class, or a large block's size with its
 * header), 0 if p is not the allocator's. */
size_t mem_block_size(const void *p);
/* 1 if p points into one of the allocator's live arenas. */
int mem_in_arena(const void *p);
/* Fill *st with the allocator's counters (walks the arenas: O(arenas)). */
void mem_get_stats(mem_stats_t *st);
/* Give memory back before fork (rt_warmup): unmap every wholly empty
 * arena (the one kept for reuse too) and madvise(MADV_DONTNEED) the pages
 * of every empty pool after its header's page (the pool is kept, empty).
 * Returns the pages given back that were resident; *pools and *arenas
 * (either may be NULL) get how many pools and arenas gave.  A pool given
 * back once is not counted again. */
size_t mem_trim(size_t *pools, size_t *arenas);
/* Page-aligned, sorted, merged address ranges of every live arena and
 * large-block chunk; writes at most max of them and returns how many there
 * are, or -1 out of memory (it needs working memory for one range per
 * arena and chunk).  mem_ranges(NULL, 0) gives the count to allocate for. */
long mem_ranges(mem_range_t *out, size_t max);
/* The collector's side memory under --gc-layout side|bitmap (slots or
 * bitmaps, in mappings of its own, never among mem_ranges()'s): the same
 * contract as mem_ranges().  0 ranges under inline. */
long mem_side_ranges(mem_range_t *out, size_t max);
/* A zeroed, page-aligned mapping of len bytes for that side memory (kept
 * until mem_fini()), or NULL; counts as an allocation for
 * mem_fail_after(). */
void *mem_side_map(size_t len);
/* Resident pages of the side memory (mincore). */
size_t mem_side_resident(void);
/* Call fn(arg, start, end) for every page-aligned range the allocator is
 * about to give back to the system (an arena or a chunk, just before its
 * munmap), so a worker can count what was copied there and mark the pages
 * released; NULL removes the hook. */
void mem_set_release_hook(void (*fn)(void *arg, uintptr_t start,
                                     uintptr_t end), void *arg);
/* Nanoseconds spent in the release hook since the process started (the
 * caller's measuring, which a timer of the runtime's work leaves out). */
uint64_t mem_hook_ns(void);
/* Test hook: make the n-th allocation from now fail (n >= 1), or none
 * (n == 0).  Every allocation of the runtime counts: small and large
 * blocks, object memory under RT_MALLOC_BYPASS (malloc), and the working
 * memory of mem_ranges(), rt_immortalize_heap(), rt_heap_walk() and
 * rt_finalize(). */
void mem_fail_after(long n);

#endif
