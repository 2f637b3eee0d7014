/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_check on VHDX files: a clean image has no findings, space after the
 * last structure is a leak (not a corruption), and damaged BAT entries are
 * all reported in one run without stopping at the first. */
#include "test_vhdx_util.h"

struct findings {
  unsigned count[4];
  char last[4][512];
};

static void collect(void *opaque, enum vhd_check_severity sev, const char *msg)
{
  struct findings *f = opaque;
  f->count[sev]++;
  snprintf(f->last[sev], sizeof f->last[sev], "%s", msg);
}

static uint8_t *made(size_t *len, unsigned blocks_written)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.size = 16 * MiB;
  p.block_size = MiB;
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "chk.vhdx", VHD_IO_RDWR, &io), 0);
  vhd_image *img;
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  uint8_t buf[4096];
  memset(buf, 0x77, sizeof buf);
  for (unsigned b = 0; b < blocks_written; b++)
    cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, (uint64_t)b * 2 * MiB), 0);
  cr_assert_eq(vhd_flush(img), 0);
  void *data;
  cr_assert_eq(vhd_io_memory_contents(io, &data, len), 0);
  vhd_close(img);
  return data;
}

static struct vhd_check_result run_check(const uint8_t *b, size_t len, struct findings *f)
{
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(b, len, "chk.vhdx", VHD_IO_RDONLY, &io), 0);
  struct vhd_check_result res;
  memset(f, 0, sizeof *f);
  cr_assert_eq(vhd_check_io(io, 0, collect, f, &res), 0, "%s", vhd_last_error());
  void *after;
  size_t alen;
  cr_assert_eq(vhd_io_memory_contents(io, &after, &alen), 0);
  cr_assert(alen == len && memcmp(after, b, len) == 0, "vhd_check changed the file");
  free(after);
  vhd_io_close(io);
  cr_assert_eq(res.format, VHD_FORMAT_VHDX);
  return res;
}

Test(vhdx_check, clean_image)
{
  size_t len;
  uint8_t *b = made(&len, 3);
  struct findings f;
  struct vhd_check_result res = run_check(b, len, &f);
  cr_assert_eq(res.corruptions + res.leaks + res.warnings, 0u, "findings on a clean image: %s %s",
               f.last[VHD_CHECK_CORRUPTION], f.last[VHD_CHECK_WARNING]);
  cr_assert_eq(res.type, VHD_TYPE_DYNAMIC);
  cr_assert_geq(f.count[VHD_CHECK_INFO], 1u);
  free(b);
}

Test(vhdx_check, space_after_the_last_structure_is_a_leak)
{
  size_t len;
  uint8_t *b = made(&len, 2);
  b = realloc(b, len + 3 * MiB);
  memset(b + len, 0x5A, 3 * MiB);
  struct findings f;
  struct vhd_check_result res = run_check(b, len + 3 * MiB, &f);
  cr_assert_eq(res.corruptions, 0u);
  cr_assert_eq(res.leaks, 1u);
  cr_assert_eq(res.leaked_bytes, 3 * MiB);
  cr_assert_not_null(strstr(f.last[VHD_CHECK_LEAK], "chk.vhdx"));
  free(b);
}

/* Two damaged entries: one past the end of the file, one overlapping
 * another block. Both are reported; the check itself succeeds. */
Test(vhdx_check, every_bad_bat_entry_is_reported)
{
  size_t len;
  uint8_t *b = made(&len, 3);
  struct tv_layout l = tv_parse(b, len);
  uint8_t *e0 = b + l.bat_offset + 8 * tv_payload_index(&l, 0);
  uint8_t *e2 = b + l.bat_offset + 8 * tv_payload_index(&l, 2);
  uint8_t *e4 = b + l.bat_offset + 8 * tv_payload_index(&l, 4);
  cr_assert_eq(tv_le64(e0) & 7, 6u, "block 0 not written as fully present");
  tv_put64(e2, ((uint64_t)len + 64 * MiB) | 6);   /* past the end */
  tv_put64(e4, tv_le64(e0));                      /* same space as block 0 */
  struct findings f;
  struct vhd_check_result res = run_check(b, len, &f);
  cr_assert_geq(res.corruptions, 2u, "last: %s", f.last[VHD_CHECK_CORRUPTION]);
  vhd_image *img;
  cr_assert_lt(tv_open(b, len, "chk.vhdx", VHD_OPEN_RDONLY, &img, NULL), 0,
               "an image with bad BAT entries opened");
  free(b);
}
