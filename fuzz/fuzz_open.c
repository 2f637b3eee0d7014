/* SPDX-License-Identifier: BSD-3-Clause */
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
#include "sparse_io.h"

#define FIRST_BYTES (2u << 20)
#define CHUNK (256u << 10)
#define STATUS_CALLS 4096

static void die(const char *what)
{
  fprintf(stderr, "fuzz_open: broken promise: %s (last error: \"%s\")\n", what, vhd_last_error());
  abort();
}

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
