/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer harness for the write path: the input chooses an image (VHD or
 * VHDX, fixed or dynamic, a block size, a disk size) and a sequence of
 * writes, zeroes, discards and flushes at any alignment. The same
 * operations go into a plain byte array. The image must read back as the
 * array at the end, again after it is closed and reopened from its bytes,
 * and the checker must find no corruption. A discarded byte may read as
 * zero or as before until it is written again (vhd_discard's contract),
 * so the harness marks those bytes "loose".
 *
 * Input: byte 0 chooses format/type/block size/sector size, byte 1 the
 * disk size ((n + 1) * 16 KiB + a few sectors), then 8-byte operations:
 *   kind, offset (3 bytes, scaled to the disk), length (2 bytes), fill seed,
 *   flags.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd.h"

#define MAX_OPS 64

static void die(const char *what, uint64_t off)
{
  fprintf(stderr, "fuzz_write: %s at %llu (last error: \"%s\")\n", what,
          (unsigned long long)off, vhd_last_error());
  abort();
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    p[i] = (uint8_t)(x >> 24);
  }
}

static void compare(vhd_image *img, const uint8_t *model, const uint8_t *loose, uint64_t size,
                    const char *when)
{
  static uint8_t buf[1 << 20];
  for (uint64_t off = 0; off < size; off += sizeof buf) {
    size_t n = size - off < sizeof buf ? (size_t)(size - off) : sizeof buf;
    if (vhd_pread(img, buf, n, off) < 0)
      die(when, off);
    if (memcmp(buf, model + off, n) == 0)
      continue;
    for (size_t i = 0; i < n; i++)
      if (buf[i] != model[off + i] && !(loose[off + i] && buf[i] == 0)) {
        fprintf(stderr, "fuzz_write: %s: byte %llu differs from the model\n", when,
                (unsigned long long)(off + i));
        abort();
      }
  }
}

/* A read-only view of bytes the harness holds (no copy per reopen). */
struct view {
  const uint8_t *p;
  size_t n;
};

static int view_pread(void *o, void *buf, size_t count, uint64_t off)
{
  const struct view *v = o;
  size_t avail = off < v->n ? v->n - (size_t)off : 0;
  size_t k = count < avail ? count : avail;
  if (k)
    memcpy(buf, v->p + off, k);
  memset((uint8_t *)buf + k, 0, count - k);
  return 0;
}

static int view_size(void *o, uint64_t *size)
{
  *size = ((const struct view *)o)->n;
  return 0;
}

static void view_close(void *o) { (void)o; }

static const struct vhd_io_ops view_ops = {
  .pread = view_pread, .get_size = view_size, .close = view_close,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = (data[0] & 1) ? VHD_FORMAT_VHDX : VHD_FORMAT_VHD;
  p.type = (data[0] & 2) ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC;
  static const uint32_t vhd_bs[4] = { 4096, 65536, 512 * 1024, 2 * 1024 * 1024 };
  static const uint32_t vhdx_bs[4] = { 1 << 20, 1 << 20, 2 << 20, 8 << 20 };
  p.block_size = p.format == VHD_FORMAT_VHDX ? vhdx_bs[(data[0] >> 2) & 3] : vhd_bs[(data[0] >> 2) & 3];
  if (p.format == VHD_FORMAT_VHDX && (data[0] & 0x10))
    p.logical_sector_size = 4096;
  uint32_t sector = p.logical_sector_size ? p.logical_sector_size : 512;
  p.size = ((uint64_t)data[1] + 1) * 16384 + ((data[0] >> 5) & 7) * (uint64_t)sector;
  data += 2;
  size -= 2;

  vhd_io *io = NULL;
  if (vhd_io_new_memory(NULL, 0, "write.img", VHD_IO_RDWR, &io) < 0)
    return 0;
  vhd_image *img = NULL;
  if (vhd_create_io(io, &p, &img) < 0)
    die("create failed", 0);
  uint64_t disk = p.size;
  uint8_t *model = calloc(1, (size_t)disk);
  uint8_t *loose = calloc(1, (size_t)disk);
  uint8_t *buf = malloc(65536 + 1);
  if (!model || !loose || !buf)
    abort();

  for (unsigned k = 0; k < MAX_OPS && size >= 8; k++, data += 8, size -= 8) {
    uint64_t off = ((uint64_t)data[1] << 16 | (uint64_t)data[2] << 8 | data[3]) * disk >> 24;
    uint64_t len = (uint64_t)data[4] << 8 | data[5];
    if (len > disk - off)
      len = disk - off;
    int r = 0;
    switch (data[0] % 5) {
    case 0: case 1:   /* write */
      fill(buf, (size_t)len, data[6]);
      r = vhd_pwrite(img, buf, (size_t)len, off);
      if (r < 0)
        die("write failed", off);
      memcpy(model + off, buf, (size_t)len);
      memset(loose + off, 0, (size_t)len);
      break;
    case 2:           /* zero, maybe trimming, maybe fast-only */
      r = vhd_zero(img, off, len, data[7] & (VHD_ZERO_MAY_TRIM | VHD_ZERO_FAST));
      if (r == -ENOTSUP && (data[7] & VHD_ZERO_FAST))
        break;
      if (r < 0)
        die("zero failed", off);
      memset(model + off, 0, (size_t)len);
      memset(loose + off, 0, (size_t)len);
      break;
    case 3:           /* discard */
      r = vhd_discard(img, off, len);
      if (r < 0)
        die("discard failed", off);
      memset(loose + off, 1, (size_t)len);
      break;
    case 4:           /* flush, and check the whole disk now and then */
      if (vhd_flush(img) < 0)
        die("flush failed", 0);
      if (data[7] & 1)
        compare(img, model, loose, disk, "after flush");
      break;
    }
  }
  if (vhd_flush(img) < 0)
    die("final flush failed", 0);
  compare(img, model, loose, disk, "before close");

  /* The bytes as they are now, reopened from scratch. */
  void *bytes = NULL;
  size_t nbytes = 0;
  if (vhd_io_memory_contents(io, &bytes, &nbytes) < 0)
    die("contents", 0);
  if (vhd_close(img) < 0)
    die("close failed", 0);
  struct view v = { bytes, nbytes };
  vhd_io *again = NULL;
  if (vhd_io_new(&view_ops, &v, "write.img", VHD_IO_RDONLY, &again) < 0)
    abort();
  struct vhd_check_result res;
  memset(&res, 0, sizeof res);
  if (vhd_check_io(again, 0, NULL, NULL, &res) < 0)
    die("check could not run", 0);
  if (res.corruptions)
    die("check finds corruption", res.corruptions);
  if (vhd_open_io(again, VHD_FORMAT_AUTO, VHD_OPEN_RDONLY, &img) < 0)
    die("reopen failed", 0);
  struct vhd_info info;
  if (vhd_get_info(img, &info) < 0 || info.format != p.format || info.virtual_size != disk)
    die("reopened image has another format or size", disk);
  compare(img, model, loose, disk, "after reopen");
  vhd_close(img);
  free(bytes);
  free(model);
  free(loose);
  free(buf);
  return 0;
}
