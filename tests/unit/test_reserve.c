/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdboot's reserve (lib/reserve.h, docs/efi-handoff.md "Reserve") over a
 * test backend (fakeio.h): a file whose trailer record the test writes
 * itself, from the documented layout, with its own CRC-32.
 *
 * - the image opens at the record's logical size and reads as before;
 * - new blocks go into the reserve: the file does not grow, the record and
 *   (VHD) the footer copy follow at flush;
 * - a crash after any change of a writing session leaves a file that opens
 *   and reads every sector as before or after, all of it after the flush;
 * - records that break a rule (CRC, version, P, L, footer copy, a forged
 *   record in guest data) are ignored: the file opens as it is;
 * - a used-up reserve: the file grows and stays valid with its record;
 * - compact and check --repair give the reserve back. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "fakeio.h"
#include "vhd.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
#define DISK (8 * MiB)

/* CRC-32 (IEEE), written here from the polynomial. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
  uint32_t c = 0xffffffffu;
  while (n--) {
    c ^= *p++;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
  }
  return ~c;
}

static void le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t rd64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

static void record(uint8_t rec[512], uint32_t version, uint32_t tail, uint64_t phys, uint64_t logical)
{
  memset(rec, 0, 512);
  memcpy(rec, "VHDBOOTR", 8);
  le32(rec + 8, version);
  le32(rec + 12, tail);
  le64(rec + 16, phys);
  le64(rec + 24, logical);
  le32(rec + 32, crc32_ieee(rec, 32));
}

static uint32_t tail_of(enum vhd_format fmt) { return fmt == VHD_FORMAT_VHD ? 512 : 0; }

/* Grows f by `reserve` bytes of room, then the record and (VHD) the
 * footer copy, as vhdboot.efi does. Returns L. */
static uint64_t add_reserve(struct fake *f, enum vhd_format fmt, uint64_t reserve)
{
  uint64_t L = f->size, T = tail_of(fmt), P = L + reserve + 512 + T;
  uint8_t footer[512];
  if (T)
    memcpy(footer, f->data + L - 512, 512);
  cr_assert_eq(fake_resize(f, P), 0);
  memset(f->data + L, 0xa5, (size_t)reserve);   /* stale bytes: must never show */
  record(f->data + P - T - 512, 1, (uint32_t)T, P, L);
  if (T)
    memcpy(f->data + P - 512, footer, 512);
  return L;
}

/* The L of a valid record at the end of f, 0 when there is none. */
static uint64_t record_logical(const struct fake *f, enum vhd_format fmt)
{
  uint64_t T = tail_of(fmt);
  if (f->size < T + 1024)
    return 0;
  const uint8_t *rec = f->data + f->size - T - 512;
  uint8_t want[512];
  record(want, 1, (uint32_t)T, f->size, rd64(rec + 24));
  if (memcmp(rec, want, 512) != 0)
    return 0;
  uint64_t L = rd64(rec + 24);
  if (T && memcmp(f->data + L - 512, f->data + f->size - 512, 512) != 0)
    return 0;
  return L;
}

static void pattern(uint8_t *buf, size_t len, unsigned seed)
{
  for (size_t i = 0; i < len; i++) {
    seed = seed * 1103515245u + 12345u;
    buf[i] = (uint8_t)(seed >> 16) | 1;
  }
}

struct w { uint64_t off; size_t len; };

static void write_all(vhd_image *img, uint8_t *model, const struct w *ws, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++) {
    uint8_t *buf = fake_realloc(NULL, ws[i].len);
    pattern(buf, ws[i].len, seed + (unsigned)i);
    cr_assert_eq(vhd_pwrite(img, buf, ws[i].len, ws[i].off), 0, "%s", vhd_last_error());
    memcpy(model + ws[i].off, buf, ws[i].len);
    fake_free(buf);
  }
}

static uint8_t *model_new(void)
{
  uint8_t *m = fake_realloc(NULL, DISK);
  memset(m, 0, DISK);
  return m;
}

static uint32_t block_of(enum vhd_format fmt) { return fmt == VHD_FORMAT_VHDX ? MiB : 512 * KiB; }

/* A dynamic image in f with data in two blocks, and its model. */
static void make_image(struct fake *f, enum vhd_format fmt, uint8_t *model)
{
  *f = (struct fake){ 0 };
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = VHD_TYPE_DYNAMIC;
  p.size = DISK;
  p.block_size = block_of(fmt);
  vhd_image *img = NULL;
  cr_assert_eq(vhd_create_io(fake_io(f, "r.img", VHD_IO_RDWR), &p, &img), 0, "%s", vhd_last_error());
  struct w pre[] = { { 0, 4096 }, { 5 * MiB + 512, 9000 } };
  write_all(img, model, pre, 2, 1);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
}

static vhd_image *open_fake(struct fake *f, const char *name, bool rw)
{
  vhd_image *img = NULL;
  int r = vhd_open_io(fake_io(f, name, rw ? VHD_IO_RDWR : VHD_IO_RDONLY), VHD_FORMAT_AUTO,
                      rw ? VHD_OPEN_RDWR : VHD_OPEN_RDONLY, &img);
  cr_assert_eq(r, 0, "%s: does not open: %s", name, vhd_last_error());
  return img;
}

static void assert_reads(vhd_image *img, const uint8_t *model, const char *what)
{
  uint8_t *got = model_new();
  cr_assert_eq(vhd_pread(img, got, DISK, 0), 0, "%s: %s", what, vhd_last_error());
  for (size_t s = 0; s < DISK; s += 512)
    cr_assert(memcmp(got + s, model + s, 512) == 0, "%s: sector %zu differs", what, s / 512);
  fake_free(got);
}

struct counts { unsigned corrupt, leaks; };
static void count(void *o, enum vhd_check_severity sev, const char *msg)
{
  struct counts *c = o;
  (void)msg;
  if (sev == VHD_CHECK_CORRUPTION)
    c->corrupt++;
  if (sev == VHD_CHECK_LEAK)
    c->leaks++;
}

/* vhd_check on f (borrowed) must be clean: no corruption, no leak. */
static void assert_clean(struct fake *f, unsigned flags, const char *what)
{
  struct vhd_check_result res;
  struct counts c = { 0, 0 };
  vhd_io *io = fake_io(f, "check.img", flags ? VHD_IO_RDWR : VHD_IO_RDONLY);
  cr_assert_eq(vhd_check_io(io, flags, count, &c, &res), 0, "%s: %s", what, vhd_last_error());
  vhd_io_close(io);
  cr_assert_eq(res.corruptions + c.corrupt, 0u, "%s: check finds corruption", what);
  cr_assert_eq(res.leaks + c.leaks, 0u, "%s: check reports leaked space", what);
}

/* f reopened read-only reads as model, and checks clean; then both go. */
static void reopens_clean(struct fake *f, uint8_t *model, const char *what)
{
  vhd_image *img = open_fake(f, what, false);
  assert_reads(img, model, what);
  vhd_close(img);
  assert_clean(f, 0, what);
  fake_destroy(f);
  fake_free(model);
}

static const struct w new_blocks[] = {
  { 1 * MiB + 100, 5000 },      /* a new block, unaligned */
  { 3 * MiB - 700, 1400 },      /* straddles a block boundary */
  { 0, 512 },                   /* into an allocated block */
  { DISK - 1, 1 },              /* the last byte */
};
#define N_NEW (sizeof new_blocks / sizeof new_blocks[0])

static void opens_at_logical(enum vhd_format fmt)
{
  struct fake f;
  uint8_t *model = model_new();
  make_image(&f, fmt, model);
  uint64_t L = add_reserve(&f, fmt, 16 * MiB);
  vhd_image *img = open_fake(&f, "ro", false);
  struct vhd_reserve rs;
  cr_assert_eq(vhd_get_reserve(img, &rs), 0, "the record is not recognised");
  cr_assert_eq(rs.logical_size, L);
  cr_assert_eq(rs.physical_size, f.size);
  cr_assert_eq(rs.free_bytes, 16 * MiB);
  cr_assert_eq(rs.trailer_bytes, tail_of(fmt));
  struct vhd_info in;
  cr_assert_eq(vhd_get_info(img, &in), 0);
  cr_assert_eq(in.file_size, f.size, "info's file size is the file's length");
  assert_reads(img, model, "with a reserve");
  vhd_close(img);
  assert_clean(&f, 0, "with a reserve");
  fake_destroy(&f);
  fake_free(model);
}

static void allocates_inside(enum vhd_format fmt)
{
  struct fake f;
  uint8_t *model = model_new();
  make_image(&f, fmt, model);
  uint64_t L = add_reserve(&f, fmt, 16 * MiB);
  size_t P = f.size;
  vhd_image *img = open_fake(&f, "rw", true);
  write_all(img, model, new_blocks, N_NEW, 50);
  cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
  cr_assert_eq(f.size, P, "the file grew although the reserve had room");
  uint64_t L2 = record_logical(&f, fmt);
  cr_assert_gt(L2, L, "the record did not follow the new blocks (L %llu -> %llu)",
               (unsigned long long)L, (unsigned long long)L2);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  reopens_clean(&f, model, "after allocating");
}

/* The file start after every prefix of logf's changes (a crash there)
 * opens and reads every sector as before or after, as after once the
 * first flushed_at changes are in. */
static void replays(const struct fake *start, const struct fake *logf, const uint8_t *before,
                    const uint8_t *after, size_t flushed_at)
{
  uint8_t *got = model_new();
  for (size_t k = 0; k <= logf->nlog; k++) {
    struct fake f;
    cr_assert_eq(fake_replay(&f, start, logf, k), 0);
    char name[64];
    snprintf(name, sizeof name, "crash-after-%zu-of-%zu", k, logf->nlog);
    vhd_image *img = open_fake(&f, name, false);
    cr_assert_eq(vhd_pread(img, got, DISK, 0), 0, "%s: %s", name, vhd_last_error());
    for (size_t s = 0; s < DISK; s += 512) {
      bool old = memcmp(got + s, before + s, 512) == 0, new = memcmp(got + s, after + s, 512) == 0;
      cr_assert(old || new, "%s: sector %zu reads neither its old nor its new content", name, s / 512);
      if (k >= flushed_at)
        cr_assert(new, "%s: sector %zu lost after the flush", name, s / 512);
    }
    vhd_close(img);
    fake_destroy(&f);
  }
  fake_free(got);
}

/* A session with a small reserve (a used-up reserve moves the trailer
 * too), then every prefix of its changes. */
static void crash_everywhere(enum vhd_format fmt, uint64_t reserve)
{
  struct fake start;
  uint8_t *before = model_new();
  make_image(&start, fmt, before);
  add_reserve(&start, fmt, reserve);
  uint8_t *after = model_new();
  memcpy(after, before, DISK);

  struct fake logf = { .log = 1 };
  cr_assert_eq(fake_resize(&logf, start.size), 0);
  memcpy(logf.data, start.data, start.size);
  vhd_image *img = open_fake(&logf, "session", true);
  write_all(img, after, new_blocks, N_NEW, 70);
  cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
  size_t flushed_at = logf.nlog;
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  cr_assert_neq(record_logical(&logf, fmt), 0u, "the session left no valid record");

  replays(&start, &logf, before, after, flushed_at);
  fake_destroy(&logf);
  fake_destroy(&start);
  fake_free(before);
  fake_free(after);
}

/* A record that breaks a rule is not there: the file opens as it is (no
 * reserve), reads as before, and takes a write without harm to anything
 * the image uses. */
static void ignored(struct fake *f, enum vhd_format fmt, const uint8_t *model, uint64_t from,
                    const char *what)
{
  size_t P = f->size, end = P - tail_of(fmt);
  uint8_t *copy = fake_realloc(NULL, P);
  memcpy(copy, f->data, P);
  vhd_image *img = open_fake(f, what, true);
  struct vhd_reserve rs;
  cr_assert_eq(vhd_get_reserve(img, &rs), -ENOENT, "%s: the record was trusted", what);
  struct vhd_info in;
  cr_assert_eq(vhd_get_info(img, &in), 0);
  /* Its own length, or less: a VHD whose last sector is no valid footer
   * gets its footer back after its last structure at a read-write open. */
  cr_assert_leq(in.file_size, P, "%s", what);
  assert_reads(img, model, what);
  uint8_t buf[4096];
  pattern(buf, sizeof buf, 9);
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 7 * MiB), 0, "%s: %s", what, vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s: %s", what, vhd_last_error());
  /* Ignored, the record's free space is just space no BAT entry uses,
   * which a new block may take like any free slot (thin provisioning
   * reuses them): what must hold is that nothing the image uses was
   * written over. The file reopens with the old content and the write. */
  (void)copy; (void)from; (void)end;
  img = open_fake(f, what, false);
  uint8_t *expect = model_new();
  memcpy(expect, model, DISK);
  memcpy(expect + 7 * MiB, buf, sizeof buf);
  assert_reads(img, expect, what);
  fake_free(expect);
  vhd_close(img);
  fake_free(copy);
}

static void hostile(enum vhd_format fmt)
{
  uint32_t T = tail_of(fmt);
  for (int kind = 0; kind < 7; kind++) {
    struct fake f;
    uint8_t *model = model_new();
    make_image(&f, fmt, model);
    uint64_t L = add_reserve(&f, fmt, 4 * MiB);
    uint64_t P = f.size;
    uint8_t *rec = f.data + P - T - 512;
    const char *what = "";
    switch (kind) {
    case 0: what = "bad CRC"; rec[33] ^= 1; break;
    case 1: what = "version 2"; record(rec, 2, T, P, L); break;
    case 2: what = "L past the record"; record(rec, 1, T, P, P - T - 256); break;
    case 3: what = "P is not the file size"; record(rec, 1, T, P + 4096, L); break;
    case 4: what = "L below one sector"; record(rec, 1, T, P, 0); break;
    case 5: what = "wrong trailer size"; record(rec, 1, T ^ 512, P, L); break;
    case 6:
      what = "footer copy differs";
      if (!T)
        continue;
      f.data[P - 512 + 100] ^= 0xff;   /* inside the footer's reserved area */
      break;
    }
    ignored(&f, fmt, model, L, what);
    fake_destroy(&f);
    fake_free(model);
  }
}

/* A guest writes a perfect record (and, the worst case, a perfect VHD
 * footer copy) into the last sectors of its own data. The image must not
 * be cut to the forged size. */
static void forged_in_guest_data(enum vhd_format fmt)
{
  struct fake f;
  uint8_t *model = model_new();
  make_image(&f, fmt, model);
  /* A new block goes at the end of the file: find where by writing it. */
  uint64_t vblock = 6 * MiB, bs = block_of(fmt);
  vhd_image *img = open_fake(&f, "guest", true);
  struct w blk[] = { { vblock, bs } };
  write_all(img, model, blk, 1, 33);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  uint32_t T = tail_of(fmt);
  uint64_t P = f.size;
  /* The guest's last sector(s) in the file: the block ends where the
   * footer (VHD) or the file (VHDX) begins. */
  uint64_t data_end = P - T;
  uint64_t forged_L = data_end - bs / 2;      /* inside the guest's block */
  uint8_t sect[1024];
  record(sect + (T ? 0 : 512), 1, T, P, forged_L);
  if (T)
    memcpy(sect + 512, f.data + P - 512, 512);   /* as if it knew the footer */
  size_t n = T ? 1024 : 512;
  /* Through the disk, as the guest would: the last n bytes of its block. */
  img = open_fake(&f, "guest2", true);
  cr_assert_eq(vhd_pwrite(img, sect + (T ? 0 : 512), n - (T ? 512 : 0),
                          vblock + bs - (n - (T ? 512 : 0))), 0, "%s", vhd_last_error());
  memcpy(model + vblock + bs - (n - (T ? 512 : 0)), sect + (T ? 0 : 512), n - (T ? 512 : 0));
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  if (T) {
    /* VHD: the guest's sector sits before the footer, so the record would
     * be at P - 1024 only with the footer copy after it; make the footer
     * at forged_L - 512 the same too (the guest writes that sector). */
    img = open_fake(&f, "guest3", true);
    uint64_t at = vblock + bs / 2 - 512;
    cr_assert_eq(vhd_pwrite(img, f.data + P - 512, 512, at), 0, "%s", vhd_last_error());
    memcpy(model + at, f.data + P - 512, 512);
    cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  }
  ignored(&f, fmt, model, forged_L, "forged in guest data");
  fake_destroy(&f);
  fake_free(model);
}

/* A reserve smaller than one block: the file must grow, keep a valid
 * record at its new end and check clean. */
static void exhausted(enum vhd_format fmt)
{
  struct fake f;
  uint8_t *model = model_new();
  make_image(&f, fmt, model);
  add_reserve(&f, fmt, 64 * KiB);
  size_t P = f.size;
  vhd_image *img = open_fake(&f, "rw", true);
  write_all(img, model, new_blocks, N_NEW, 90);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  cr_assert_gt(f.size, P, "the file did not grow");
  cr_assert_neq(record_logical(&f, fmt), 0u, "no valid record at the new end");
  reopens_clean(&f, model, "after growing");
}

/* A file that cannot grow (the loader's view: only its own clusters) and
 * a reserve of one block: a write over two new blocks gets the first and
 * fails on the second, cleanly, and the rest of the session (writes into
 * allocated blocks, flushes) goes on with the trailer where it is. */
static void full_host(enum vhd_format fmt)
{
  struct fake f;
  uint8_t *model = model_new();
  make_image(&f, fmt, model);
  uint32_t bs = block_of(fmt);
  add_reserve(&f, fmt, bs + 64 * KiB);
  f.max_size = f.size;
  vhd_image *img = open_fake(&f, "rw", true);
  size_t n = 2 * bs;
  uint8_t *two = fake_realloc(NULL, n);
  pattern(two, n, 5);
  cr_assert_lt(vhd_pwrite(img, two, n, 2 * MiB), 0, "two blocks fit in a one-block reserve");
  fake_free(two);
  struct w in_place[] = { { 512, 2048 } };
  write_all(img, model, in_place, 1, 6);
  cr_assert_eq(vhd_flush(img), 0, "flush after a failed allocation: %s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  cr_assert_neq(record_logical(&f, fmt), 0u, "the record was lost");
  f.max_size = 0;
  /* The failed write's range holds its new bytes or the old ones: take
   * what the image says there, check everything else. */
  img = open_fake(&f, "after", false);
  cr_assert_eq(vhd_pread(img, model + 2 * MiB, n, 2 * MiB), 0, "%s", vhd_last_error());
  vhd_close(img);
  reopens_clean(&f, model, "after a failed allocation");
}

static void given_back(enum vhd_format fmt, bool by_repair)
{
  struct fake f;
  uint8_t *model = model_new();
  make_image(&f, fmt, model);
  add_reserve(&f, fmt, 16 * MiB);
  vhd_image *img = open_fake(&f, "rw", true);
  write_all(img, model, new_blocks, N_NEW, 110);
  cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
  uint64_t L = record_logical(&f, fmt);
  if (by_repair) {
    cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
    assert_clean(&f, VHD_CHECK_REPAIR, "repair");
  } else {
    struct vhd_compact_result res;
    cr_assert_eq(vhd_compact(img, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
    cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
    cr_assert_lt(res.file_size_after, res.file_size_before);
  }
  cr_assert_leq(f.size, L, "the reserve is still there");
  cr_assert_eq(record_logical(&f, fmt), 0u, "a record is left");
  img = open_fake(&f, "plain", false);
  struct vhd_reserve rs;
  cr_assert_eq(vhd_get_reserve(img, &rs), -ENOENT);
  vhd_close(img);
  reopens_clean(&f, model, "given back");
}

/* vhd_boot_prepare (lib/ops/boot_prepare.c) over the fake: a reserve made
 * (none before) or grown (a small one before), written, its record last,
 * every prefix of the session a valid image with the same content. */
#define PREPARE_WANT (6 * MiB)

static void prepare_crash(enum vhd_format fmt, uint64_t reserve_before)
{
  struct fake start;
  uint8_t *model = model_new();
  make_image(&start, fmt, model);
  uint64_t L = start.size;
  if (reserve_before)
    L = add_reserve(&start, fmt, reserve_before);
  uint64_t old_end = reserve_before ? start.size - tail_of(fmt) - 512 : start.size;

  struct fake logf = { .log = 1 };
  cr_assert_eq(fake_resize(&logf, start.size), 0);
  memcpy(logf.data, start.data, start.size);
  vhd_image *img = open_fake(&logf, "prepare", true);
  struct vhd_boot_prepare_result res;
  cr_assert_eq(vhd_boot_prepare(img, PREPARE_WANT, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_assert_eq(res.uses_reserve, 1);
  cr_assert_eq(res.reserve_free_before, reserve_before);
  cr_assert_geq(res.reserve_free_after, PREPARE_WANT);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());

  uint64_t T = tail_of(fmt), R = logf.size - T - 512;
  cr_assert_eq(record_logical(&logf, fmt), L, "no record for the image's end");
  cr_assert_geq(R - L, PREPARE_WANT, "the reserve is smaller than asked");
  cr_assert_eq(res.bytes_written, R - old_end, "zeros written: %llu",
               (unsigned long long)res.bytes_written);
  for (uint64_t o = old_end; o < R; o++)
    cr_assert_eq(logf.data[o], 0, "the new reserve is not zeros at %llu", (unsigned long long)o);
  /* The record is the last write that counts: before it, the file is an
   * image without one (or with the old one). */
  size_t record_write = 0;
  for (size_t i = 0; i < logf.nlog; i++)
    if (logf.changelog[i].op == FAKE_WRITE && logf.changelog[i].offset == R)
      record_write = i;
  for (size_t i = record_write + 1; i < logf.nlog; i++)
    cr_assert_neq(logf.changelog[i].op, FAKE_WRITE, "a write after the record");
  replays(&start, &logf, model, model, 0);
  assert_clean(&logf, 0, "prepared");
  fake_destroy(&logf);
  fake_destroy(&start);
  fake_free(model);
}

/* The handle that prepared the file goes on through the reserve: new
 * blocks land inside it, the file does not grow; a second prepare that
 * asks for no more than is left writes nothing. */
static void prepare_then_write(enum vhd_format fmt)
{
  struct fake f;
  uint8_t *model = model_new();
  make_image(&f, fmt, model);
  uint64_t L = f.size;
  vhd_image *img = open_fake(&f, "rw", true);
  cr_assert_eq(vhd_boot_prepare(img, PREPARE_WANT, NULL, NULL, NULL), 0, "%s", vhd_last_error());
  size_t P = f.size;
  write_all(img, model, new_blocks, N_NEW, 130);
  cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
  cr_assert_eq(f.size, P, "the file grew although the reserve had room");
  cr_assert_gt(record_logical(&f, fmt), L, "the record did not follow the new blocks");
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());

  img = open_fake(&f, "again", true);
  cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());   /* what a read-write open writes */
  f.log = 1;
  struct vhd_boot_prepare_result res;
  struct vhd_reserve rs;
  cr_assert_eq(vhd_get_reserve(img, &rs), 0);
  cr_assert_eq(vhd_boot_prepare(img, rs.free_bytes, NULL, NULL, &res), 0, "%s",
               vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  for (size_t i = 0; i < f.nlog; i++)
    cr_assert_neq(f.changelog[i].op, FAKE_WRITE, "a second prepare wrote at %llu",
                  (unsigned long long)f.changelog[i].offset);
  cr_assert_eq(res.bytes_written, 0u);
  f.log = 0;
  fake_free_log(&f);
  reopens_clean(&f, model, "prepared, then written");
}

/* compact gives the reserve back; a prepare on the same handle makes a
 * new one, which new blocks then use. */
static void prepare_after_compact(enum vhd_format fmt)
{
  struct fake f;
  uint8_t *model = model_new();
  make_image(&f, fmt, model);
  add_reserve(&f, fmt, 4 * MiB);
  vhd_image *img = open_fake(&f, "rw", true);
  struct vhd_compact_result cres;
  cr_assert_eq(vhd_compact(img, 0, NULL, NULL, &cres), 0, "%s", vhd_last_error());
  cr_assert_eq(record_logical(&f, fmt), 0u, "compact left a record");
  struct vhd_boot_prepare_result res;
  cr_assert_eq(vhd_boot_prepare(img, PREPARE_WANT, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_assert_eq(res.reserve_free_before, 0u);
  cr_assert_geq(res.reserve_free_after, PREPARE_WANT);
  size_t P = f.size;
  write_all(img, model, new_blocks, N_NEW, 150);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  cr_assert_eq(f.size, P, "the file grew although the new reserve had room");
  cr_assert_neq(record_logical(&f, fmt), 0u, "no record after the writes");
  reopens_clean(&f, model, "prepared after compact");
}

static void prepare_refused_readonly(void)
{
  struct fake f;
  uint8_t *model = model_new();
  make_image(&f, VHD_FORMAT_VHDX, model);
  vhd_image *img = open_fake(&f, "ro", false);
  cr_assert_eq(vhd_boot_prepare(img, 0, NULL, NULL, NULL), -EROFS);
  cr_assert(strstr(vhd_last_error(), "ro:") != NULL, "%s", vhd_last_error());
  vhd_close(img);
  fake_destroy(&f);
  fake_free(model);
}

static void free_fakes(void) { fake_free_all(); }
TestSuite(reserve, .fini = free_fakes);

Test(reserve, vhd_opens_at_logical) { opens_at_logical(VHD_FORMAT_VHD); }
Test(reserve, vhdx_opens_at_logical) { opens_at_logical(VHD_FORMAT_VHDX); }
Test(reserve, vhd_allocates_inside) { allocates_inside(VHD_FORMAT_VHD); }
Test(reserve, vhdx_allocates_inside) { allocates_inside(VHD_FORMAT_VHDX); }
Test(reserve, vhd_crash, .timeout = 240) { crash_everywhere(VHD_FORMAT_VHD, 16 * MiB); }
Test(reserve, vhdx_crash, .timeout = 240) { crash_everywhere(VHD_FORMAT_VHDX, 16 * MiB); }
Test(reserve, vhd_crash_growing, .timeout = 240) { crash_everywhere(VHD_FORMAT_VHD, 64 * KiB); }
Test(reserve, vhdx_crash_growing, .timeout = 240) { crash_everywhere(VHD_FORMAT_VHDX, 64 * KiB); }
Test(reserve, vhd_hostile) { hostile(VHD_FORMAT_VHD); }
Test(reserve, vhdx_hostile) { hostile(VHD_FORMAT_VHDX); }
Test(reserve, vhd_forged) { forged_in_guest_data(VHD_FORMAT_VHD); }
Test(reserve, vhdx_forged) { forged_in_guest_data(VHD_FORMAT_VHDX); }
Test(reserve, vhd_exhausted) { exhausted(VHD_FORMAT_VHD); }
Test(reserve, vhdx_exhausted) { exhausted(VHD_FORMAT_VHDX); }
Test(reserve, vhd_full_host) { full_host(VHD_FORMAT_VHD); }
Test(reserve, vhdx_full_host) { full_host(VHD_FORMAT_VHDX); }
Test(reserve, vhd_compact_gives_back) { given_back(VHD_FORMAT_VHD, false); }
Test(reserve, vhdx_compact_gives_back) { given_back(VHD_FORMAT_VHDX, false); }
Test(reserve, vhd_repair_gives_back) { given_back(VHD_FORMAT_VHD, true); }
Test(reserve, vhdx_repair_gives_back) { given_back(VHD_FORMAT_VHDX, true); }
Test(reserve, vhd_prepare_crash, .timeout = 240) { prepare_crash(VHD_FORMAT_VHD, 0); }
Test(reserve, vhdx_prepare_crash, .timeout = 240) { prepare_crash(VHD_FORMAT_VHDX, 0); }
Test(reserve, vhd_prepare_grow_crash, .timeout = 240) { prepare_crash(VHD_FORMAT_VHD, 64 * KiB); }
Test(reserve, vhdx_prepare_grow_crash, .timeout = 240) { prepare_crash(VHD_FORMAT_VHDX, 64 * KiB); }
Test(reserve, vhd_prepare_then_write) { prepare_then_write(VHD_FORMAT_VHD); }
Test(reserve, vhdx_prepare_then_write) { prepare_then_write(VHD_FORMAT_VHDX); }
Test(reserve, prepare_refused_readonly) { prepare_refused_readonly(); }
Test(reserve, vhd_prepare_after_compact) { prepare_after_compact(VHD_FORMAT_VHD); }
Test(reserve, vhdx_prepare_after_compact) { prepare_after_compact(VHD_FORMAT_VHDX); }
