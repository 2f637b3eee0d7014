/* SPDX-License-Identifier: BSD-3-Clause */
/* The in-memory backend: a growable buffer. Used by tests and the fuzz
 * harnesses; freestanding-clean. */
#include "error.h"
#include "io.h"

struct membuf {
  uint8_t *data;
  size_t size;
  size_t cap;
};

/* Refuse sizes that a test or a fuzz input could not mean. */
#define MEMORY_MAX_SIZE ((uint64_t)1 << 32)

static int mem_pread(void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct membuf *m = opaque;
  size_t avail = offset < m->size ? m->size - (size_t)offset : 0;
  size_t n = count < avail ? count : avail;
  if (n)
    memcpy(buf, m->data + offset, n);
  memset((uint8_t *)buf + n, 0, count - n);
  return 0;
}

static int mem_set_size(void *opaque, uint64_t size)
{
  struct membuf *m = opaque;
  if (size > MEMORY_MAX_SIZE)
    return -EFBIG;
  if (size > m->cap) {
    size_t cap = m->cap ? m->cap : 4096;
    while (cap < size)
      cap *= 2;
    uint8_t *p = vhd_realloc(m->data, cap);
    if (!p)
      return -ENOMEM;
    m->data = p;
    m->cap = cap;
  }
  if (size > m->size)
    memset(m->data + m->size, 0, (size_t)size - m->size);
  m->size = (size_t)size;
  return 0;
}

static int mem_pwrite(void *opaque, const void *buf, size_t count, uint64_t offset)
{
  struct membuf *m = opaque;
  if (offset > MEMORY_MAX_SIZE || count > MEMORY_MAX_SIZE - offset)
    return -EFBIG;
  if (offset + count > m->size) {
    int r = mem_set_size(m, offset + count);
    if (r < 0)
      return r;
  }
  memcpy(m->data + offset, buf, count);
  return 0;
}

static int mem_flush(void *opaque) { (void)opaque; return 0; }

static int mem_get_size(void *opaque, uint64_t *size)
{
  *size = ((struct membuf *)opaque)->size;
  return 0;
}

static int mem_punch_hole(void *opaque, uint64_t offset, uint64_t length)
{
  struct membuf *m = opaque;
  if (offset >= m->size)
    return 0;
  if (length > m->size - offset)
    length = m->size - offset;
  memset(m->data + offset, 0, (size_t)length);
  return 0;
}

static void mem_close(void *opaque)
{
  struct membuf *m = opaque;
  vhd_free(m->data);
  vhd_free(m);
}

static const struct vhd_io_ops memory_ops = {
  .pread = mem_pread,
  .pwrite = mem_pwrite,
  .flush = mem_flush,
  .get_size = mem_get_size,
  .set_size = mem_set_size,
  .punch_hole = mem_punch_hole,
  .close = mem_close,
};

int vhd_io_new_memory(const void *data, size_t size, const char *name,
                      unsigned flags, vhd_io **out)
{
  *out = NULL;
  struct membuf *m = vhd_calloc(1, sizeof *m);
  if (!m)
    return vhd_error(ENOMEM, "%s: out of memory", name ? name : "memory");
  int r = mem_set_size(m, size);
  if (r < 0) {
    mem_close(m);
    return vhd_error(-r, "%s: cannot hold %zu bytes in memory", name ? name : "memory", size);
  }
  if (size)
    memcpy(m->data, data, size);
  r = vhd_io_new(&memory_ops, m, name ? name : "memory", flags, out);
  if (r < 0)
    mem_close(m);
  return r;
}

int vhd_io_memory_contents(vhd_io *io, void **data, size_t *size)
{
  if (!io || io->ops != &memory_ops)
    return vhd_error(EINVAL, "%s: not an in-memory file", io ? io->name : "(null)");
  struct membuf *m = io->opaque;
  *data = vhd_malloc(m->size);
  if (!*data)
    return vhd_error(ENOMEM, "%s: out of memory", io->name);
  if (m->size)
    memcpy(*data, m->data, m->size);
  *size = m->size;
  return 0;
}
