/* libFuzzer harness: open whatever the input is, read-only, the way every
 * front end does (probing, no parent chain), then read the virtual disk,
 * walk its allocation and run the checker over it.
 *
 * Two input forms, so that VHDX files (whose structures sit at 1 MiB
 * multiples) fit in a small input:
 *  - plain: the input is the file, given as an in-memory file
 *    (vhd_io_new_memory);
 *  - sparse: "VHDFUZZS", a u64 LE file size, then records of u64 LE offset,
 *    u32 LE length and that many bytes; the rest of the file reads as zeros.
 *    fuzz/sparsify.py writes this form.
 *
 * Besides the sanitizers, the harness aborts when the library breaks a
 * promise of vhd.h (a failure without a message, a status run outside its
 * bounds, a read past the end accepted), so the fuzzer finds those too.
 *
 * Work is capped (first 2 MiB, 8 scattered ranges, the last 64 KiB, 4096
 * status runs; only 64 KiB of inputs that probe as raw, which the raw
 * driver passes straight through) so huge declared sizes cost time only if
 * the library itself does something proportional to them. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd.h"

#define SPARSE_MAGIC "VHDFUZZS"
#define SPARSE_MAX_RECORDS 4096
#define FIRST_BYTES (2u << 20)
#define CHUNK (256u << 10)
#define STATUS_CALLS 4096

static void die(const char *what)
{
  fprintf(stderr, "fuzz_open: broken promise: %s (last error: \"%s\")\n", what, vhd_last_error());
  abort();
}

/* --- The sparse backend ------------------------------------------------- */

struct record {
  uint64_t offset;
  uint32_t length;
  const uint8_t *data;
};

struct sparse {
  uint64_t size;
  unsigned count;
  struct record rec[SPARSE_MAX_RECORDS];
};

static uint64_t get_le(const uint8_t *p, unsigned n)
{
  uint64_t v = 0;
  for (unsigned i = n; i-- > 0; )
    v = v << 8 | p[i];
  return v;
}

/* Parse the sparse form; 0 when the input is not (a valid) one. */
static int sparse_parse(const uint8_t *data, size_t size, struct sparse *s)
{
  if (size < 16 || memcmp(data, SPARSE_MAGIC, 8) != 0)
    return 0;
  s->size = get_le(data + 8, 8);
  s->count = 0;
  size_t pos = 16;
  while (pos + 12 <= size && s->count < SPARSE_MAX_RECORDS) {
    struct record *r = &s->rec[s->count];
    r->offset = get_le(data + pos, 8);
    r->length = (uint32_t)get_le(data + pos + 8, 4);
    pos += 12;
    if (r->length > size - pos)
      r->length = (uint32_t)(size - pos);
    r->data = data + pos;
    pos += r->length;
    /* Keep records inside the declared file. */
    if (r->offset >= s->size)
      continue;
    if (r->length > s->size - r->offset)
      r->length = (uint32_t)(s->size - r->offset);
    s->count++;
  }
  return 1;
}

static int sparse_pread(void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct sparse *s = opaque;
  memset(buf, 0, count);
  if (offset >= s->size)
    return 0;
  uint64_t end = offset + count;
  for (unsigned i = 0; i < s->count; i++) {
    const struct record *r = &s->rec[i];
    uint64_t rs = r->offset, re = r->offset + r->length;
    uint64_t lo = rs > offset ? rs : offset, hi = re < end ? re : end;
    if (lo < hi)
      memcpy((uint8_t *)buf + (lo - offset), r->data + (lo - rs), (size_t)(hi - lo));
  }
  return 0;
}

static int sparse_get_size(void *opaque, uint64_t *size)
{
  *size = ((struct sparse *)opaque)->size;
  return 0;
}

static void sparse_close(void *opaque) { (void)opaque; }

static const struct vhd_io_ops sparse_ops = {
  .pread = sparse_pread,
  .get_size = sparse_get_size,
  .close = sparse_close,
};

/* A fresh read-only io over the input. */
static vhd_io *input_io(const uint8_t *data, size_t size, struct sparse *s)
{
  vhd_io *io = NULL;
  int r = s ? vhd_io_new(&sparse_ops, s, "fuzz.img", VHD_IO_RDONLY, &io)
            : vhd_io_new_memory(data, size, "fuzz.img", VHD_IO_RDONLY, &io);
  return r < 0 ? NULL : io;
}

/* --- The exercise ------------------------------------------------------- */

static uint8_t buf[CHUNK + 1024];

static void read_range(vhd_image *img, uint64_t off, uint64_t len)
{
  while (len) {
    size_t n = len < CHUNK ? (size_t)len : CHUNK;
    int r = vhd_pread(img, buf, n, off);
    if (r < 0 && !*vhd_last_error())
      die("read failed without a message");
    off += n;
    len -= n;
  }
}

static void walk_status(vhd_image *img, uint64_t size)
{
  uint64_t off = 0;
  for (unsigned i = 0; i < STATUS_CALLS && off < size; i++) {
    unsigned st = 0;
    uint64_t run = 0;
    int layer = -2;
    int r = vhd_block_status(img, off, size - off, &st, &run, &layer);
    if (r < 0) {
      if (!*vhd_last_error())
        die("block_status failed without a message");
      return;
    }
    if (run < 1 || run > size - off)
      die("block_status run outside 1..length");
    if (st & ~(unsigned)(VHD_STATUS_DATA | VHD_STATUS_ZERO))
      die("block_status unknown flags");
    if (layer < -1)
      die("block_status layer not set");
    off += run;
  }
}

static void report(void *opaque, enum vhd_check_severity sev, const char *message)
{
  (void)opaque;
  if (sev > VHD_CHECK_CORRUPTION || !message || !*message)
    die("check report without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct sparse s;
  struct sparse *sp = sparse_parse(data, size, &s) ? &s : NULL;

  vhd_io *io = input_io(data, size, sp);
  if (!io)
    return 0;
  vhd_image *img = NULL;
  int r = vhd_open_io(io, VHD_FORMAT_AUTO, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, &img);
  if (r < 0) {
    if (!*vhd_last_error())
      die("open failed without a message");
  } else {
    struct vhd_info info;
    if (vhd_get_info(img, &info) < 0)
      die("get_info failed on an open image");
    uint64_t vs = info.virtual_size;
    uint64_t first = info.format == VHD_FORMAT_RAW ? 65536 : FIRST_BYTES;
    read_range(img, 0, vs < first ? vs : first);
    if (vs > first && info.format != VHD_FORMAT_RAW) {
      for (uint64_t i = 1; i <= 8; i++) {
        uint64_t off = vs / 9 * i;
        /* Every other range unaligned, to reach the edge handling. */
        uint64_t len = (i & 1) ? 65536 : 4097;
        off = (i & 1) ? off & ~(uint64_t)511 : off | 1;
        if (off + len > vs)
          len = vs - off;
        read_range(img, off, len);
      }
      read_range(img, vs - 65536, 65536);
    }
    if (vhd_pread(img, buf, 1, vs) != -EINVAL)
      die("read past the virtual size not refused");
    walk_status(img, vs);
    vhd_close(img);
  }

  io = input_io(data, size, sp);
  if (!io)
    return 0;
  struct vhd_check_result res;
  memset(&res, 0, sizeof res);
  r = vhd_check_io(io, VHD_OPEN_NO_PARENT, report, NULL, &res);
  if (r < 0 && !*vhd_last_error())
    die("check could not run and gave no message");
  vhd_io_close(io);
  return 0;
}
