/* SPDX-License-Identifier: BSD-3-Clause */
/* A read cache in front of a backend where every request is a round trip
 * (an NBD server, an HTTP object under nbdkit's curl plugin): the drivers
 * read small metadata pieces (a BAT sector, a bitmap, a header) one at a
 * time, and each would otherwise cost the network's latency.
 *
 * The file is cut into blocks of `block` bytes; at most capacity/block of
 * them are kept (least recently used goes first), so memory is bounded
 * whatever the image says. A miss fetches every missing block of the
 * request in one read; when misses follow each other in file order the
 * fetch grows (read-ahead, doubling up to max_fetch), so a sequential
 * reader pays one round trip per few MiB. Several readers (nbdcopy's
 * connections, each with requests in flight that arrive out of order)
 * are told apart as streams: a miss at or a little past where a stream's
 * last fetch ended continues that stream. Writes go straight through and
 * update the cached copies; a fetch that raced with a write is returned to
 * its reader but not kept (generation counter), so a stale block is never
 * cached. */
#include "error.h"
#include "io.h"
#include "util/arith.h"

struct cache_slot {
  uint64_t index;      /* block number, valid only when data != NULL and filled */
  uint64_t last_use;
  bool filled;
  uint8_t *data;
};

#define CACHE_STREAMS 8

struct cache_stream {
  uint64_t next;       /* block after the stream's last fetch */
  size_t readahead;    /* bytes */
  uint64_t last_use;
};

struct io_cache {
  vhd_io *inner;
  vhd_mutex lock;
  uint32_t block;
  unsigned nslots;
  size_t max_fetch;              /* bytes, a multiple of block */
  struct cache_slot *slots;
  uint64_t clock;
  uint64_t generation;           /* bumped by every change of the file */
  struct cache_stream streams[CACHE_STREAMS];
  struct io_cache_stats stats;
};

static struct cache_slot *find_slot(struct io_cache *c, uint64_t index)
{
  for (unsigned i = 0; i < c->nslots; i++)
    if (c->slots[i].filled && c->slots[i].index == index)
      return &c->slots[i];
  return NULL;
}

static struct cache_slot *victim_slot(struct io_cache *c)
{
  struct cache_slot *best = &c->slots[0];
  for (unsigned i = 0; i < c->nslots; i++) {
    if (!c->slots[i].filled)
      return &c->slots[i];
    if (c->slots[i].last_use < best->last_use)
      best = &c->slots[i];
  }
  return best;
}

/* Copies the part of block `index` that [offset, offset+count) covers
 * into buf, under the lock. false on a miss. */
static bool copy_if_cached(struct io_cache *c, uint64_t index, uint8_t *buf, size_t count,
                           uint64_t offset)
{
  vhd_mutex_lock(&c->lock);
  struct cache_slot *s = find_slot(c, index);
  if (s) {
    s->last_use = ++c->clock;
    memcpy(buf, s->data + (offset - index * c->block), count);
    c->stats.hits++;
  }
  vhd_mutex_unlock(&c->lock);
  return s != NULL;
}

/* Keep the fetched blocks, unless the file changed while they were read. */
static void keep_blocks(struct io_cache *c, uint64_t first, unsigned nblocks,
                        const uint8_t *data, uint64_t generation)
{
  vhd_mutex_lock(&c->lock);
  for (unsigned i = 0; i < nblocks && generation == c->generation; i++) {
    if (find_slot(c, first + i))
      continue;
    struct cache_slot *s = victim_slot(c);
    if (!s->data)
      s->data = vhd_malloc(c->block);
    if (!s->data)
      break;   /* memory is short: just cache less */
    memcpy(s->data, data + (size_t)i * c->block, c->block);
    s->index = first + i;
    s->filled = true;
    s->last_use = ++c->clock;
  }
  vhd_mutex_unlock(&c->lock);
}

/* The stream a miss at index continues (at or a little past where its
 * last fetch ended: requests in flight arrive out of order), else a new
 * one in place of the least recently used. */
static struct cache_stream *stream_for(struct io_cache *c, uint64_t index)
{
  struct cache_stream *oldest = &c->streams[0];
  for (unsigned i = 0; i < CACHE_STREAMS; i++) {
    struct cache_stream *s = &c->streams[i];
    uint64_t slack = max_u64(2, s->readahead / c->block);
    if (s->readahead && index >= s->next && index - s->next <= slack)
      return s;
    if (s->last_use < oldest->last_use)
      oldest = s;
  }
  oldest->readahead = 0;
  return oldest;
}

/* How many blocks to fetch for a miss at `index`: the missing blocks the
 * request covers, grown by its stream's read-ahead. A new stream starts
 * with two blocks, so one isolated miss costs little more than itself. */
static unsigned fetch_blocks(struct io_cache *c, uint64_t index, uint64_t last, uint64_t size)
{
  uint64_t end_block = (size + c->block - 1) / c->block;
  vhd_mutex_lock(&c->lock);
  struct cache_stream *s = stream_for(c, index);
  s->readahead = s->readahead ? (size_t)min_u64(s->readahead * 2, c->max_fetch) : c->block * 2;
  s->last_use = ++c->clock;
  uint64_t want = max_u64(last - index + 1, s->readahead / c->block);
  unsigned n = 1;
  /* Up to the first block already here: fetching it again costs bytes
   * and evicts another block for nothing. */
  while (n < want && n < c->max_fetch / c->block && index + n < end_block &&
         !find_slot(c, index + n))
    n++;
  s->next = index + n;
  vhd_mutex_unlock(&c->lock);
  return n;
}

static int cache_pread(void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct io_cache *c = opaque;
  uint8_t *out = buf;
  uint64_t size;
  int r = io_get_size(c->inner, &size);
  if (r < 0)
    return r;
  uint64_t last = (offset + count - 1) / c->block;
  while (count > 0) {
    uint64_t index = offset / c->block;
    size_t in_block = (size_t)min_u64(count, c->block - offset % c->block);
    if (offset >= size) {   /* past the end: zeros, nothing to ask for */
      memset(out, 0, count);
      return 0;
    }
    if (copy_if_cached(c, index, out, in_block, offset)) {
      out += in_block;
      offset += in_block;
      count -= in_block;
      continue;
    }
    unsigned n = fetch_blocks(c, index, last, size);
    size_t bytes = (size_t)n * c->block;
    uint8_t *tmp = vhd_malloc(bytes);
    if (!tmp)
      return -ENOMEM;
    uint64_t start = index * c->block;
    vhd_mutex_lock(&c->lock);
    uint64_t generation = c->generation;
    c->stats.misses++;
    c->stats.fetches++;
    c->stats.fetched_bytes += bytes;
    vhd_mutex_unlock(&c->lock);
    r = io_pread_upto(c->inner, tmp, bytes, start, size);
    if (r < 0) {
      vhd_free(tmp);
      return r;
    }
    keep_blocks(c, index, n, tmp, generation);
    size_t take = (size_t)min_u64(count, bytes - (offset - start));
    memcpy(out, tmp + (offset - start), take);
    vhd_free(tmp);
    out += take;
    offset += take;
    count -= take;
  }
  return 0;
}

/* After the file changed in [offset, offset+length): cached copies take
 * the new bytes (data) or are dropped (data NULL), and fetches in flight
 * are not kept. */
static void file_changed(struct io_cache *c, const void *data, uint64_t offset, uint64_t length)
{
  vhd_mutex_lock(&c->lock);
  c->generation++;
  for (unsigned i = 0; i < c->nslots; i++) {
    struct cache_slot *s = &c->slots[i];
    uint64_t bstart = s->index * c->block;
    if (!s->filled || bstart >= offset + length || bstart + c->block <= offset)
      continue;
    if (!data) {
      s->filled = false;
      continue;
    }
    uint64_t from = max_u64(bstart, offset);
    uint64_t to = min_u64(bstart + c->block, offset + length);
    memcpy(s->data + (from - bstart), (const uint8_t *)data + (from - offset), (size_t)(to - from));
  }
  vhd_mutex_unlock(&c->lock);
}

static int cache_pwrite(void *opaque, const void *buf, size_t count, uint64_t offset)
{
  struct io_cache *c = opaque;
  int r = io_pwrite(c->inner, buf, count, offset);
  /* Even a failed write may have changed part of the range. */
  file_changed(c, r < 0 ? NULL : buf, offset, count);
  return r;
}

static int cache_punch_hole(void *opaque, uint64_t offset, uint64_t length)
{
  struct io_cache *c = opaque;
  int r = io_punch_hole(c->inner, offset, length);
  file_changed(c, NULL, offset, length);
  return r;
}

static int cache_set_size(void *opaque, uint64_t size)
{
  struct io_cache *c = opaque;
  int r = io_set_size(c->inner, size);
  file_changed(c, NULL, size / c->block * c->block, UINT64_MAX / 2);
  return r;
}

static int cache_flush(void *opaque) { return io_flush(((struct io_cache *)opaque)->inner); }

static int cache_get_size(void *opaque, uint64_t *size)
{
  return io_get_size(((struct io_cache *)opaque)->inner, size);
}

static int cache_find_data(void *opaque, uint64_t offset, uint64_t *data, uint64_t *hole)
{
  vhd_io *inner = ((struct io_cache *)opaque)->inner;
  return inner->ops->find_data ? io_find_data(inner, offset, data, hole) : -ENOTSUP;
}

static int cache_open_related(void *opaque, const char *path, unsigned flags, vhd_io **out)
{
  return io_open_related(((struct io_cache *)opaque)->inner, path, flags, out);
}

static void cache_close(void *opaque)
{
  struct io_cache *c = opaque;
  for (unsigned i = 0; i < c->nslots; i++)
    vhd_free(c->slots[i].data);
  vhd_free(c->slots);
  vhd_mutex_destroy(&c->lock);
  vhd_io_close(c->inner);
  vhd_free(c);
}

static const struct vhd_io_ops cache_ops = {
  .pread = cache_pread,
  .pwrite = cache_pwrite,
  .flush = cache_flush,
  .get_size = cache_get_size,
  .set_size = cache_set_size,
  .punch_hole = cache_punch_hole,
  .find_data = cache_find_data,
  .open_related = cache_open_related,
  .close = cache_close,
};

int io_cache_wrap(vhd_io *inner, const struct io_cache_params *p, vhd_io **out)
{
  *out = NULL;
  uint32_t block = p->block;
  if (block < 4096 || block > IO_CACHE_MAX_BLOCK || (block & (block - 1)))
    return vhd_error(EINVAL, "%s: cache block of %u bytes: must be a power of two from "
                     "4096 to %u", inner->name, block, IO_CACHE_MAX_BLOCK);
  uint64_t nslots = p->capacity / block;
  if (nslots < 2 || nslots > IO_CACHE_MAX_SLOTS)
    return vhd_error(EINVAL, "%s: cache of %llu bytes in blocks of %u: must hold from 2 to "
                     "%u blocks", inner->name, (unsigned long long)p->capacity, block,
                     IO_CACHE_MAX_SLOTS);
  struct io_cache *c = vhd_calloc(1, sizeof *c);
  struct cache_slot *slots = vhd_calloc((size_t)nslots, sizeof *slots);
  if (!c || !slots) {
    vhd_free(c);
    vhd_free(slots);
    return vhd_error(ENOMEM, "%s: out of memory", inner->name);
  }
  c->inner = inner;
  c->block = block;
  c->nslots = (unsigned)nslots;
  c->slots = slots;
  /* A fetch may not push out more than a quarter of what is kept. */
  c->max_fetch = (size_t)max_u64(block, min_u64(IO_CACHE_MAX_FETCH, nslots / 4 * block));
  vhd_mutex_init(&c->lock);
  int r = vhd_io_new(&cache_ops, c, inner->name, inner->flags, out);
  if (r < 0) {
    vhd_mutex_destroy(&c->lock);
    vhd_free(slots);
    vhd_free(c);
    return r;
  }
  (*out)->fixed_size = inner->fixed_size;
  (*out)->nbd_export = inner->nbd_export;
  (*out)->logical_sector_size = inner->logical_sector_size;
  (*out)->physical_sector_size = inner->physical_sector_size;
  return 0;
}

void io_cache_get_stats(vhd_io *io, struct io_cache_stats *stats)
{
  memset(stats, 0, sizeof *stats);
  if (io->ops != &cache_ops)
    return;
  struct io_cache *c = io->opaque;
  vhd_mutex_lock(&c->lock);
  *stats = c->stats;
  vhd_mutex_unlock(&c->lock);
}
