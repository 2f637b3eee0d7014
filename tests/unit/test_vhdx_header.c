/* SPDX-License-Identifier: BSD-3-Clause */
/* The two VHDX headers: which one is current, what happens when one or both
 * are damaged, and how a read-write session updates them (never the
 * current copy in place; sequence numbers grow; new GUIDs on the first
 * write; an empty log_guid after a clean close). Headers are built here from
 * the spec's layout, not with the library's encoder. */
#include "test_vhdx_util.h"
#include "vhdx/vhdx.h"

static void build_header(uint8_t h[4096], uint64_t seq, uint8_t fill)
{
  memset(h, 0, 4096);
  memcpy(h, "head", 4);
  tv_put64(h + 8, seq);
  memset(h + 16, fill, 16);          /* file_write_guid */
  memset(h + 32, fill + 1, 16);      /* data_write_guid */
  tv_put16(h + 66, 1);               /* version */
  tv_put32(h + 68, MiB);             /* log_length */
  tv_put64(h + 72, MiB);             /* log_offset */
  tv_fix_crc(h, 4096, 4);
}

static uint8_t h1[4096], h2[4096];

Test(vhdx_header, larger_sequence_wins)
{
  struct vhdx_header_choice c;
  build_header(h1, 5, 1);
  build_header(h2, 7, 2);
  vhdx_header_select(h1, h2, &c);
  cr_assert_eq(c.current, 1);
  build_header(h1, 9, 1);
  build_header(h2, 3, 2);
  vhdx_header_select(h1, h2, &c);
  cr_assert_eq(c.current, 0);
  cr_assert(c.valid[0] && c.valid[1]);
}

Test(vhdx_header, decode_fields)
{
  struct vhdx_header h;
  const char *why;
  build_header(h1, 42, 7);
  cr_assert(vhdx_header_decode(h1, &h, &why));
  cr_assert_eq(h.sequence, 42);
  cr_assert_eq(h.file_write_guid[0], 7);
  cr_assert_eq(h.data_write_guid[15], 8);
  cr_assert_eq(h.log_length, MiB);
  cr_assert_eq(h.log_offset, MiB);
  cr_assert_eq(h.version, 1);
}

Test(vhdx_header, bad_checksum_uses_the_other)
{
  struct vhdx_header_choice c;
  build_header(h1, 100, 1);
  build_header(h2, 7, 2);
  h1[200] ^= 1;   /* newer one damaged */
  vhdx_header_select(h1, h2, &c);
  cr_assert_eq(c.current, 1);
  cr_assert(!c.valid[0]);
  cr_assert_not_null(strstr(c.why[0], "checksum"));
}

Test(vhdx_header, both_bad_is_none)
{
  struct vhdx_header_choice c;
  build_header(h1, 1, 1);
  build_header(h2, 2, 2);
  memcpy(h1, "HEAD", 4);
  h2[4] ^= 0x80;
  vhdx_header_select(h1, h2, &c);
  cr_assert_eq(c.current, -1);
  cr_assert(!c.conflict);
  cr_assert_not_null(strstr(c.why[0], "signature"));
}

Test(vhdx_header, version_must_be_one)
{
  struct vhdx_header_choice c;
  build_header(h1, 10, 1);
  build_header(h2, 2, 2);
  tv_put16(h1 + 66, 2);
  tv_fix_crc(h1, 4096, 4);
  vhdx_header_select(h1, h2, &c);
  cr_assert_eq(c.current, 1, "a version 2 header must not be used");
}

Test(vhdx_header, identical_equal_sequence_accepted)
{
  struct vhdx_header_choice c;
  build_header(h1, 1, 3);
  memcpy(h2, h1, sizeof h2);
  vhdx_header_select(h1, h2, &c);
  cr_assert_eq(c.current, 0);
  cr_assert(c.identical_equal_seq);
}

Test(vhdx_header, different_equal_sequence_refused)
{
  struct vhdx_header_choice c;
  build_header(h1, 4, 3);
  build_header(h2, 4, 5);
  vhdx_header_select(h1, h2, &c);
  cr_assert_eq(c.current, -1);
  cr_assert(c.conflict);
}

/* --- through the public API ------------------------------------------------ */

static uint8_t *made(size_t *len)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.size = 8 * MiB;
  p.block_size = MiB;
  return tv_make(&p, len);
}

Test(vhdx_header, one_damaged_header_opens_with_a_warning)
{
  size_t len;
  uint8_t *b = made(&len);
  struct tv_layout l = tv_parse(b, len);
  b[l.header[l.current] + 300] ^= 0x55;
  vhd_image *img;
  cr_assert_eq(tv_open(b, len, "one-bad.vhdx", VHD_OPEN_RDONLY, &img, NULL), 0, "%s",
               vhd_last_error());
  struct vhd_info info;
  cr_assert_eq(vhd_get_info(img, &info), 0);
  cr_assert_geq(info.warnings, 1u);
  vhd_close(img);
  free(b);
}

Test(vhdx_header, both_damaged_headers_fail_naming_the_file)
{
  size_t len;
  uint8_t *b = made(&len);
  struct tv_layout l = tv_parse(b, len);
  b[l.header[0] + 300] ^= 0x55;
  b[l.header[1] + 8] ^= 0x01;
  vhd_image *img;
  int r = tv_open(b, len, "both-bad.vhdx", VHD_OPEN_RDONLY, &img, NULL);
  cr_assert_lt(r, 0);
  cr_assert_not_null(strstr(vhd_last_error(), "both-bad.vhdx"), "%s", vhd_last_error());
  cr_assert_not_null(strstr(vhd_last_error(), "header"), "%s", vhd_last_error());
  free(b);
}

Test(vhdx_header, disk2vhd_identical_headers_open)
{
  size_t len;
  uint8_t *b = made(&len);
  struct tv_layout l = tv_parse(b, len);
  memcpy(b + l.header[1 - l.current], b + l.header[l.current], 4096);
  vhd_image *img;
  cr_assert_eq(tv_open(b, len, "d2v.vhdx", VHD_OPEN_RDONLY, &img, NULL), 0, "%s",
               vhd_last_error());
  vhd_close(img);
  free(b);
}

/* A read-write session: the bytes of each slot, before and after. */
Test(vhdx_header, session_updates_headers_the_spec_way)
{
  size_t len;
  uint8_t *b = made(&len);
  struct tv_layout l = tv_parse(b, len);
  uint64_t seq0 = tv_le64(b + l.header[l.current] + 8);
  uint8_t fwg0[16], dwg0[16];
  memcpy(fwg0, b + l.header[l.current] + 16, 16);
  memcpy(dwg0, b + l.header[l.current] + 32, 16);

  /* Opening read-write and closing without writing changes nothing. */
  vhd_image *img;
  vhd_io *io;
  cr_assert_eq(tv_open(b, len, "s.vhdx", VHD_OPEN_RDWR, &img, &io), 0, "%s", vhd_last_error());
  void *after;
  size_t alen;
  cr_assert_eq(vhd_io_memory_contents(io, &after, &alen), 0);
  cr_assert(alen == len && memcmp(after, b, len) == 0, "an idle read-write open wrote");
  free(after);

  uint8_t data[4096];
  memset(data, 0xC3, sizeof data);
  cr_assert_eq(vhd_pwrite(img, data, sizeof data, 4096), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_io_memory_contents(io, &after, &alen), 0);
  uint8_t *a = after;
  /* After a flush: both copies valid, the current one newer, new GUIDs,
   * and an empty log GUID (the log was applied in full). */
  for (int i = 0; i < 2; i++) {
    uint8_t h[4096];
    memcpy(h, a + l.header[i], 4096);
    uint32_t stored = tv_le32(h + 4);
    tv_put32(h + 4, 0);
    cr_assert_eq(stored, tv_crc32c(h, 4096), "header %d checksum after an update", i + 1);
  }
  struct tv_layout m = tv_parse(a, alen);
  const uint8_t *cur = a + m.header[m.current], *old = a + m.header[1 - m.current];
  cr_assert_eq(tv_le64(cur + 8), tv_le64(old + 8) + 1);
  cr_assert_gt(tv_le64(cur + 8), seq0);
  cr_assert_neq(memcmp(cur + 16, fwg0, 16), 0, "file_write_guid unchanged by a write");
  cr_assert_neq(memcmp(cur + 32, dwg0, 16), 0, "data_write_guid unchanged by a write");
  static const uint8_t zero[16];
  cr_assert_eq(memcmp(cur + 48, zero, 16), 0, "log_guid left set after a completed flush");
  cr_assert_eq(memcmp(old + 48, zero, 16), 0, "old header copy has a log_guid");
  free(after);

  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  free(b);
}

/* The close of a written image leaves log_guid empty: checked on a file
 * backend we can read after the image is gone. */
Test(vhdx_header, clean_close_empties_the_log_guid)
{
  char path[] = "/tmp/vhdx-hdr-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.size = 8 * MiB;
  p.block_size = MiB;
  vhd_io *io;
  cr_assert_eq(vhd_io_open_file(path, VHD_IO_RDWR | VHD_IO_CREATE | VHD_IO_TRUNC, &io), 0);
  vhd_image *img;
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  uint8_t data[8192];
  memset(data, 0x11, sizeof data);
  cr_assert_eq(vhd_pwrite(img, data, sizeof data, 3 * MiB), 0);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f);
  uint8_t *b = malloc(16 * MiB);
  size_t len = fread(b, 1, 16 * MiB, f);
  fclose(f);
  unlink(path);
  struct tv_layout l = tv_parse(b, len);
  static const uint8_t zero[16];
  cr_assert_eq(memcmp(b + l.header[l.current] + 48, zero, 16), 0, "log_guid left set");
  cr_assert_eq(memcmp(b + l.header[1 - l.current] + 48, zero, 16), 0, "old copy has log_guid");
  free(b);
}

/* A hostile sequence number cannot wrap: the first write is refused. */
Test(vhdx_header, sequence_number_cannot_overflow)
{
  size_t len;
  uint8_t *b = made(&len);
  struct tv_layout l = tv_parse(b, len);
  tv_put64(b + l.header[l.current] + 8, UINT64_MAX);
  tv_fix_crc(b + l.header[l.current], 4096, 4);
  vhd_image *img;
  cr_assert_eq(tv_open(b, len, "seq.vhdx", VHD_OPEN_RDWR, &img, NULL), 0, "%s",
               vhd_last_error());
  uint8_t data[512] = { 1 };
  int r = vhd_pwrite(img, data, sizeof data, 0);
  cr_assert_lt(r, 0, "a write with sequence number UINT64_MAX succeeded");
  cr_assert_not_null(strstr(vhd_last_error(), "sequence"), "%s", vhd_last_error());
  vhd_close(img);
  free(b);
}
