/* SPDX-License-Identifier: BSD-3-Clause */
/* VHDX log replay over hand-built logs. The entries are written here from
 * the layout in MS-VHDX 2.3 (not with the library's writer); each test puts
 * payload data in the file that only a correct replay makes visible (the
 * on-disk BAT does not point at it), then checks what a read-only open sees
 * (replay in memory, file untouched) and what a read-write open leaves on
 * disk. */
#include "test_vhdx_util.h"
#include "vhdx/vhdx.h"
#include <unistd.h>

#define NBLK 3
static const uint8_t GUID[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                  0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xF0, 0x01 };
static const uint8_t OTHER_GUID[16] = { 0x99, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                        0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xF0, 0x02 };

struct base {
  uint8_t *b;
  size_t len;
  struct tv_layout l;
  uint64_t data_off[NBLK];   /* where block k's data lies (unreferenced on disk) */
};

/* An 8 MiB dynamic image with 1 MiB blocks, plus NBLK MiB of patterned
 * payload at its end that no on-disk BAT entry points at. */
static struct base make_base(void)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.size = 8 * MiB;
  p.block_size = MiB;
  struct base s;
  s.b = tv_make(&p, &s.len);
  s.l = tv_parse(s.b, s.len);
  size_t end = (s.len + MiB - 1) / MiB * MiB;
  s.b = realloc(s.b, end + NBLK * MiB);
  cr_assert_not_null(s.b);
  memset(s.b + s.len, 0, end - s.len);
  for (int k = 0; k < NBLK; k++) {
    s.data_off[k] = end + (uint64_t)k * MiB;
    memset(s.b + s.data_off[k], 0x10 + k, MiB);
  }
  s.len = end + NBLK * MiB;
  return s;
}

/* The current header names guid as its log GUID. */
static void set_log_guid(struct base *s, const uint8_t guid[16])
{
  uint8_t *h = s->b + s->l.header[s->l.current];
  memcpy(h + 48, guid, 16);
  tv_fix_crc(h, 4096, 4);
}

/* BAT sector 0 as it is on disk with the blocks in mask made present. */
static void bat_sector(const struct base *s, unsigned mask, uint8_t out[4096])
{
  memcpy(out, s->b + s->l.bat_offset, 4096);
  for (int k = 0; k < NBLK; k++)
    if (mask & (1u << k))
      tv_put64(out + 8 * tv_payload_index(&s->l, (uint64_t)k), s->data_off[k] | 6);
}

struct tdesc {
  bool zero;
  uint64_t offset;
  uint64_t zero_length;
  const uint8_t *sector;     /* data descriptors: the 4 KiB to write */
};

/* Write one log entry at pos of the log ring (wrapping at its end);
 * returns its length. */
static uint32_t put_entry(struct base *s, uint32_t pos, uint64_t seq, uint32_t tail,
                          const uint8_t guid[16], const struct tdesc *d, int n)
{
  int ndata = 0;
  for (int i = 0; i < n; i++)
    ndata += !d[i].zero;
  int dsec = (n + 2 + 127) / 128;
  uint32_t len = (uint32_t)(dsec + ndata) * 4096;
  uint8_t *e = calloc(1, len);
  cr_assert_not_null(e);
  memcpy(e, "loge", 4);
  tv_put32(e + 8, len);
  tv_put32(e + 12, tail);
  tv_put64(e + 16, seq);
  tv_put32(e + 24, (uint32_t)n);
  memcpy(e + 32, guid, 16);
  tv_put64(e + 48, s->len / MiB * MiB);
  tv_put64(e + 56, (s->len + MiB - 1) / MiB * MiB);
  int data = 0;
  for (int i = 0; i < n; i++) {
    uint8_t *x = e + (size_t)((i + 2) / 128) * 4096 + (size_t)((i + 2) % 128) * 32;
    if (d[i].zero) {
      memcpy(x, "zero", 4);
      tv_put64(x + 8, d[i].zero_length);
    } else {
      memcpy(x, "desc", 4);
      memcpy(x + 4, d[i].sector + 4092, 4);
      memcpy(x + 8, d[i].sector, 8);
      uint8_t *ds = e + (size_t)(dsec + data++) * 4096;
      memcpy(ds, "data", 4);
      tv_put32(ds + 4, (uint32_t)(seq >> 32));
      memcpy(ds + 8, d[i].sector + 8, 4084);
      tv_put32(ds + 4092, (uint32_t)seq);
    }
    tv_put64(x + 16, d[i].offset);
    tv_put64(x + 24, seq);
  }
  tv_fix_crc(e, len, 4);
  for (uint32_t k = 0; k < len / 4096; k++) {
    uint32_t at = (pos + k * 4096) % s->l.log_length;
    memcpy(s->b + s->l.log_offset + at, e + (size_t)k * 4096, 4096);
  }
  free(e);
  return len;
}

/* One data descriptor rewriting BAT sector 0 with the blocks of mask. */
static uint32_t put_bat_entry(struct base *s, uint32_t pos, uint64_t seq, uint32_t tail,
                              const uint8_t guid[16], unsigned mask)
{
  uint8_t sec[4096];
  bat_sector(s, mask, sec);
  struct tdesc d = { false, s->l.bat_offset, 0, sec };
  return put_entry(s, pos, seq, tail, guid, &d, 1);
}

/* Block k reads as its pattern when (mask bit k), zeros otherwise; the
 * read-only open must not change a byte. */
static void expect_ro(const struct base *s, unsigned mask, const char *what)
{
  vhd_image *img;
  vhd_io *io;
  int r = tv_open(s->b, s->len, "log.vhdx", VHD_OPEN_RDONLY, &img, &io);
  cr_assert_eq(r, 0, "%s: read-only open: %s", what, vhd_last_error());
  uint8_t *buf = malloc(MiB);
  for (int k = 0; k < NBLK; k++) {
    cr_assert_eq(vhd_pread(img, buf, MiB, (uint64_t)k * MiB), 0);
    uint8_t want = (mask & (1u << k)) ? (uint8_t)(0x10 + k) : 0;
    for (size_t i = 0; i < MiB; i += 511)
      cr_assert_eq(buf[i], want, "%s: block %d byte %zu reads %02x, want %02x", what, k, i,
                   buf[i], want);
  }
  free(buf);
  void *after;
  size_t alen;
  cr_assert_eq(vhd_io_memory_contents(io, &after, &alen), 0);
  cr_assert(alen == s->len && memcmp(after, s->b, s->len) == 0,
            "%s: a read-only open changed the file", what);
  free(after);
  vhd_close(img);
}

Test(vhdx_log, no_log_no_data)
{
  struct base s = make_base();
  expect_ro(&s, 0, "control");
  free(s.b);
}

Test(vhdx_log, one_entry)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  put_bat_entry(&s, 0, 1, 0, GUID, 0x1);
  expect_ro(&s, 0x1, "one entry");
  free(s.b);
}

/* Three entries rewrite one sector in turn: only replay in order gives the
 * last state. The third also zeroes the first 4 KiB of block 1's data. */
Test(vhdx_log, several_entries_in_order)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  uint32_t pos = 8192, first = pos;
  pos += put_bat_entry(&s, pos, 100, first, GUID, 0x1);
  pos += put_bat_entry(&s, pos, 101, first, GUID, 0x7);
  uint8_t sec[4096];
  bat_sector(&s, 0x3, sec);
  struct tdesc d[2] = { { false, s.l.bat_offset, 0, sec }, { true, s.data_off[1], 4096, NULL } };
  put_entry(&s, pos, 102, first, GUID, d, 2);

  vhd_image *img;
  cr_assert_eq(tv_open(s.b, s.len, "log.vhdx", VHD_OPEN_RDONLY, &img, NULL), 0, "%s",
               vhd_last_error());
  uint8_t buf[8192];
  cr_assert_eq(vhd_pread(img, buf, sizeof buf, 0), 0);
  cr_assert_eq(buf[0], 0x10);
  cr_assert_eq(vhd_pread(img, buf, sizeof buf, MiB), 0);
  cr_assert_eq(buf[0], 0, "the zero descriptor was not replayed");
  cr_assert_eq(buf[4095], 0);
  cr_assert_eq(buf[4096], 0x11);
  cr_assert_eq(vhd_pread(img, buf, sizeof buf, 2 * MiB), 0);
  cr_assert_eq(buf[0], 0, "block 2 present: entries replayed out of order");
  vhd_close(img);
  free(s.b);
}

/* An entry that starts in the last sector of the ring and continues at its
 * start. */
Test(vhdx_log, entry_wraps_around_the_end)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  uint32_t pos = s.l.log_length - 4096;
  put_bat_entry(&s, pos, 7, pos, GUID, 0x5);
  expect_ro(&s, 0x5, "wrapped entry");
  free(s.b);
}

/* A torn last entry (one byte of its data sector lost) is not part of the
 * active sequence: the state is that of the entries before it. */
Test(vhdx_log, torn_last_entry_is_ignored)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  uint32_t pos = 0;
  pos += put_bat_entry(&s, pos, 50, 0, GUID, 0x1);
  pos += put_bat_entry(&s, pos, 51, 0, GUID, 0x3);
  uint32_t torn = pos;
  pos += put_bat_entry(&s, pos, 52, 0, GUID, 0x7);
  s.b[s.l.log_offset + torn + 4096 + 100] ^= 0xFF;   /* its data sector */
  expect_ro(&s, 0x3, "torn last entry");
  free(s.b);
}

/* Two valid sequences with the same GUID: the one with the newest head is
 * replayed, wherever it lies in the ring. */
Test(vhdx_log, stale_sequence_is_not_replayed)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  put_bat_entry(&s, 0, 40, 0, GUID, 0x2);                   /* newest */
  put_bat_entry(&s, 512 * KiB, 3, 512 * KiB, GUID, 0x5);    /* stale */
  expect_ro(&s, 0x2, "stale sequence later in the ring");
  free(s.b);
}

/* Entries carrying another log GUID (left from an earlier session) never
 * count, even with a higher sequence number. */
Test(vhdx_log, entries_of_another_guid_are_ignored)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  put_bat_entry(&s, 0, 900, 0, OTHER_GUID, 0x7);
  put_bat_entry(&s, 256 * KiB, 8, 256 * KiB, GUID, 0x4);
  expect_ro(&s, 0x4, "other GUID");
  free(s.b);
}

/* log_guid set but nothing in the log carries it: the log is then empty
 * (QEMU's reading, lib/vhdx/log.c), so the file opens with the on-disk
 * metadata and vhd_check warns. */
Test(vhdx_log, no_valid_sequence_means_an_empty_log)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  put_bat_entry(&s, 0, 900, 0, OTHER_GUID, 0x7);
  expect_ro(&s, 0, "no valid sequence");
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(s.b, s.len, "nolog.vhdx", VHD_IO_RDONLY, &io), 0);
  struct vhd_check_result res;
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0);
  cr_assert_eq(res.corruptions, 0u);
  cr_assert_geq(res.warnings, 1u);
  cr_assert_eq(res.log_needs_replay, 0);
  vhd_io_close(io);
  free(s.b);
}

/* vhd_check of a file with a pending log: flagged, a warning, no
 * corruption, and the check sees the replayed state. */
Test(vhdx_log, check_reports_pending_log)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  put_bat_entry(&s, 0, 1, 0, GUID, 0x1);
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(s.b, s.len, "pending.vhdx", VHD_IO_RDONLY, &io), 0);
  struct vhd_check_result res;
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0);
  cr_assert_eq(res.log_needs_replay, 1);
  cr_assert_geq(res.warnings, 1u);
  cr_assert_eq(res.corruptions, 0u);
  vhd_io_close(io);
  free(s.b);
}

/* Open s read-write (which replays its log) and make s what the file holds
 * afterwards. */
static void replay_read_write(struct base *s, const char *name)
{
  vhd_image *img;
  vhd_io *io;
  cr_assert_eq(tv_open(s->b, s->len, name, VHD_OPEN_RDWR, &img, &io), 0, "%s",
               vhd_last_error());
  void *after;
  size_t alen;
  cr_assert_eq(vhd_io_memory_contents(io, &after, &alen), 0);
  vhd_close(img);
  free(s->b);
  s->b = after;
  s->len = alen;
}

/* Read-write: replayed onto the file, log_guid emptied, and the result
 * reads the same with no log left. */
Test(vhdx_log, read_write_open_replays_to_disk)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  uint32_t pos = 0;
  pos += put_bat_entry(&s, pos, 20, 0, GUID, 0x1);
  put_bat_entry(&s, pos, 21, 0, GUID, 0x5);
  uint64_t data2 = s.data_off[2];
  replay_read_write(&s, "rw.vhdx");
  const uint8_t *a = s.b;
  struct tv_layout l = tv_parse(a, s.len);
  static const uint8_t zero[16];
  cr_assert_eq(memcmp(a + l.header[l.current] + 48, zero, 16), 0, "log_guid still set");
  cr_assert_eq(tv_le64(a + l.bat_offset + 8 * tv_payload_index(&l, 2)), data2 | 6,
               "BAT entry not replayed to disk");
  /* The other header copy must be valid too (updated the spec's way). */
  uint8_t h[4096];
  memcpy(h, a + l.header[1 - l.current], 4096);
  uint32_t stored = tv_le32(h + 4);
  tv_put32(h + 4, 0);
  cr_assert_eq(stored, tv_crc32c(h, 4096));
  expect_ro(&s, 0x5, "after read-write replay");
  free(s.b);
}

Test(vhdx_log, truncated_file_is_refused)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  put_bat_entry(&s, 0, 1, 0, GUID, 0x1);
  /* Claim that more of the file was durable than there is. */
  uint8_t *e = s.b + s.l.log_offset;
  tv_put64(e + 48, (uint64_t)s.len + 64 * MiB);
  tv_fix_crc(e, tv_le32(e + 8), 4);
  vhd_image *img;
  int r = tv_open(s.b, s.len, "trunc.vhdx", VHD_OPEN_RDONLY, &img, NULL);
  cr_assert_lt(r, 0);
  cr_assert_not_null(strstr(vhd_last_error(), "truncated"), "%s", vhd_last_error());
  free(s.b);
}

Test(vhdx_log, descriptor_into_the_headers_is_refused)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  uint8_t sec[4096];
  memset(sec, 0xEE, sizeof sec);
  struct tdesc d = { false, 64 * KiB, 0, sec };
  put_entry(&s, 0, 1, 0, GUID, &d, 1);
  vhd_image *img;
  int r = tv_open(s.b, s.len, "hdr.vhdx", VHD_OPEN_RDONLY, &img, NULL);
  cr_assert_lt(r, 0);
  cr_assert_not_null(strstr(vhd_last_error(), "descriptor"), "%s", vhd_last_error());
  free(s.b);
}

Test(vhdx_log, log_outside_the_file_is_refused)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  uint8_t *h = s.b + s.l.header[s.l.current];
  tv_put64(h + 72, (uint64_t)s.len);   /* log_offset at the end of the file */
  tv_fix_crc(h, 4096, 4);
  vhd_image *img;
  int r = tv_open(s.b, s.len, "far.vhdx", VHD_OPEN_RDONLY, &img, NULL);
  cr_assert_lt(r, 0);
  cr_assert_not_null(strstr(vhd_last_error(), "log"), "%s", vhd_last_error());
  free(s.b);
}

/* A log entry sequence search over a ring full of plausible but broken
 * entries ends (the work limit), not hangs. */
Test(vhdx_log, hostile_ring_scan_terminates)
{
  uint32_t len = 4 * MiB;
  uint8_t *log = calloc(1, len);
  cr_assert_not_null(log);
  for (uint32_t pos = 0; pos < len; pos += 4096) {
    uint8_t *e = log + pos;
    memcpy(e, "loge", 4);
    tv_put32(e + 8, len);          /* claims the whole ring */
    tv_put64(e + 16, 5);
    memcpy(e + 32, GUID, 16);
    tv_put32(e + 4, 0xDEADBEEF);   /* never the right checksum */
  }
  struct vhdx_log_seq seq;
  int r = vhdx_log_find_active(log, len, GUID, &seq);
  cr_assert(r == -E2BIG || (r == 0 && seq.count == 0), "r = %d", r);
  free(log);
}

/* The library's own entry writer produces what the spec (and this file's
 * reader of it) expects. */
Test(vhdx_log, library_writer_follows_the_layout)
{
  uint8_t data[2 * 4096];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)(i * 13 + 1);
  uint64_t offsets[2] = { 3 * MiB, 3 * MiB + 8192 };
  uint32_t len = vhdx_log_entry_size(2);
  cr_assert_eq(len, 3 * 4096u);
  uint8_t *e = calloc(1, len);
  vhdx_log_build_entry(e, len, 4096, 0x0000000500000007ull, GUID, 4 * MiB, 8 * MiB, 2, offsets,
                       data);
  cr_assert_eq(memcmp(e, "loge", 4), 0);
  uint8_t copy[3 * 4096];
  memcpy(copy, e, len);
  tv_put32(copy + 4, 0);
  cr_assert_eq(tv_le32(e + 4), tv_crc32c(copy, len));
  cr_assert_eq(tv_le32(e + 8), len);
  cr_assert_eq(tv_le32(e + 12), 4096u);
  cr_assert_eq(tv_le32(e + 24), 2u);
  for (int k = 0; k < 2; k++) {
    const uint8_t *d = e + 64 + 32 * k, *ds = e + 4096 * (1 + k);
    cr_assert_eq(memcmp(d, "desc", 4), 0);
    cr_assert_eq(memcmp(d + 8, data + 4096 * k, 8), 0, "leading bytes");
    cr_assert_eq(memcmp(d + 4, data + 4096 * k + 4092, 4), 0, "trailing bytes");
    cr_assert_eq(tv_le64(d + 16), offsets[k]);
    cr_assert_eq(memcmp(ds, "data", 4), 0);
    cr_assert_eq(tv_le32(ds + 4), 5u);
    cr_assert_eq(tv_le32(ds + 4092), 7u);
    cr_assert_eq(memcmp(ds + 8, data + 4096 * k + 8, 4084), 0);
  }
  struct vhdx_log_entry ent;
  cr_assert(vhdx_log_entry_valid(e, len, 0, GUID, &ent));
  free(e);
}

/* The base image in a temporary file, for read-write opens whose failure
 * closes their I/O: the file shows what they wrote. */
static char *write_temp(const struct base *s)
{
  char *path = strdup("/tmp/vhdx_log_XXXXXX");
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, s->b, s->len), (ssize_t)s->len);
  close(fd);
  return path;
}

/* With a log of one entry holding d[0..n), a read-write open of s is
 * refused with a message holding want, and the file is left exactly as it
 * was. Frees s. */
static void expect_rw_refused_untouched(struct base *s, const struct tdesc *d, int n,
                                        const char *want)
{
  set_log_guid(s, GUID);
  put_entry(s, 0, 1, 0, GUID, d, n);
  char *path = write_temp(s);
  vhd_image *img;
  int r = vhd_open(path, VHD_OPEN_RDWR, &img);
  cr_assert_lt(r, 0, "read-write open of a hostile log succeeded");
  cr_assert_not_null(strstr(vhd_last_error(), path), "%s", vhd_last_error());
  cr_assert_not_null(strstr(vhd_last_error(), want), "%s", vhd_last_error());
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f);
  uint8_t *after = malloc(s->len + 1);
  size_t got = fread(after, 1, s->len + 1, f);
  fclose(f);
  cr_assert(got == s->len && memcmp(after, s->b, s->len) == 0,
            "a refused read-write open changed the file");
  free(after);
  unlink(path);
  free(path);
  free(s->b);
}

/* Entries that rewrite either region table copy (192 and 256 KiB) are
 * refused before anything is written: the region table decides what the
 * log may touch, so it cannot come from the log. */
Test(vhdx_log, descriptor_into_the_region_tables_is_refused)
{
  static const uint64_t targets[] = { 192 * KiB, 256 * KiB, 512 * KiB };
  for (size_t t = 0; t < sizeof targets / sizeof *targets; t++) {
    struct base s = make_base();
    uint8_t bat[4096], junk[4096];
    bat_sector(&s, 0x1, bat);
    memset(junk, 0xEE, sizeof junk);
    struct tdesc d[2] = { { false, s.l.bat_offset, 0, bat }, { false, targets[t], 0, junk } };
    expect_rw_refused_untouched(&s, d, 2, "header section");
  }
}

/* A zero range that starts in the BAT region and runs past its end. */
Test(vhdx_log, descriptor_across_a_region_edge_is_refused)
{
  struct base s = make_base();
  struct tdesc d = { true, s.l.bat_offset, (uint64_t)s.l.bat_length + 4096, NULL };
  expect_rw_refused_untouched(&s, &d, 1, "edge of the BAT region");
}

/* A replay whose BAT then fails validation (a block over the log) is
 * refused by a read-write open before it writes anything. */
Test(vhdx_log, replay_leaving_a_bad_bat_is_not_written)
{
  struct base s = make_base();
  uint8_t sec[4096];
  memcpy(sec, s.b + s.l.bat_offset, 4096);
  tv_put64(sec + 8 * tv_payload_index(&s.l, 0), s.l.log_offset | 6);
  struct tdesc d = { false, s.l.bat_offset, 0, sec };
  expect_rw_refused_untouched(&s, &d, 1, "log");
}

/* Sectors past the regions (where sector bitmap blocks live) may still be
 * logged, and a read-write open writes them. */
Test(vhdx_log, data_area_descriptor_is_replayed)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  uint8_t sec[4096];
  bat_sector(&s, 0x3, sec);
  struct tdesc d[2] = { { false, s.l.bat_offset, 0, sec }, { true, s.data_off[1], MiB, NULL } };
  put_entry(&s, 0, 1, 0, GUID, d, 2);
  replay_read_write(&s, "data.vhdx");
  expect_ro(&s, 0x1, "zero range in the data area");
  free(s.b);
}

/* A sector logged past the old end of the file and then zeroed by a later
 * descriptor ends up as zeros on disk, as in the in-memory replay. */
Test(vhdx_log, zero_range_after_a_sector_past_the_end)
{
  struct base s = make_base();
  set_log_guid(&s, GUID);
  size_t old_len = s.len;
  uint8_t sec[4096];
  memset(sec, 0xAB, sizeof sec);
  struct tdesc d[2] = { { false, old_len, 0, sec }, { true, old_len, 4096, NULL } };
  put_entry(&s, 0, 1, 0, GUID, d, 2);
  replay_read_write(&s, "tail.vhdx");
  cr_assert_geq(s.len, old_len + 4096);
  for (size_t i = old_len; i < old_len + 4096; i++)
    cr_assert_eq(s.b[i], 0, "byte %zu past the old end reads %02x", i, s.b[i]);
  free(s.b);
}
