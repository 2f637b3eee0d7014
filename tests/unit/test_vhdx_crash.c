/* SPDX-License-Identifier: BSD-3-Clause */
/* Crash safety of VHDX writes. A recording backend logs every pwrite,
 * set_size and flush (and punch, as zeros) of a workload of rounds (random
 * writes and trims, then vhd_flush). Crash images are rebuilt from that log: every
 * change up to some flush, plus a random subset of the changes issued after
 * it (they may reach the disk in any order before a crash). Each crash
 * image must open read-only (replaying any log in memory), be free of
 * corruption for vhd_check, read every sector as it was before the round or
 * as the round left it, and read the same after a read-write open replayed
 * its log to disk. After a completed vhd_flush nothing may be lost. Dynamic
 * images with 512- and 4096-byte sectors, and a differencing child whose
 * partial blocks mix its data with the parent's through sector bitmaps. */
#define _GNU_SOURCE
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "test_vhdx_util.h"

static char scratch[PATH_MAX];
static char parent_path[PATH_MAX + 32];
static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb; (void)flag; (void)ftw;
  return remove(p);
}
static void setup(void)
{
  const char *t = getenv("TMPDIR");
  snprintf(scratch, sizeof scratch, "%s/vhdxcrash.XXXXXX", t && *t ? t : "/tmp");
  cr_assert_not_null(mkdtemp(scratch));
  snprintf(parent_path, sizeof parent_path, "%s/parent.vhdx", scratch);
}
static void teardown(void) { nftw(scratch, rm_one, 8, FTW_DEPTH | FTW_PHYS); }

/* --- The recording backend ------------------------------------------------- */

enum change_op { CH_WRITE, CH_FLUSH, CH_SET_SIZE };
struct change {
  enum change_op op;
  uint64_t offset;   /* WRITE: where; SET_SIZE: the new size */
  size_t len;
  uint8_t *data;
};
struct recorder {
  uint8_t *data;
  size_t size;
  bool log;
  struct change *changes;
  size_t n, cap;
};

static void rec_log(struct recorder *r, enum change_op op, uint64_t off, const void *buf,
                    size_t len)
{
  if (!r->log)
    return;
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 256;
    r->changes = realloc(r->changes, r->cap * sizeof *r->changes);
    cr_assert_not_null(r->changes);
  }
  struct change *c = &r->changes[r->n++];
  *c = (struct change){ op, off, len, NULL };
  if (buf) {
    c->data = malloc(len ? len : 1);
    memcpy(c->data, buf, len);
  }
}

static void rec_resize(struct recorder *r, uint64_t size)
{
  r->data = realloc(r->data, size ? (size_t)size : 1);
  cr_assert_not_null(r->data);
  if (size > r->size)
    memset(r->data + r->size, 0, (size_t)size - r->size);
  r->size = (size_t)size;
}

static int rec_pread(void *o, void *buf, size_t n, uint64_t off)
{
  struct recorder *r = o;
  size_t avail = off < r->size ? r->size - (size_t)off : 0;
  size_t k = n < avail ? n : avail;
  memcpy(buf, r->data + off, k);
  memset((uint8_t *)buf + k, 0, n - k);
  return 0;
}

static int rec_pwrite(void *o, const void *buf, size_t n, uint64_t off)
{
  struct recorder *r = o;
  if (off + n > r->size)
    rec_resize(r, off + n);
  memcpy(r->data + off, buf, n);
  rec_log(r, CH_WRITE, off, buf, n);
  return 0;
}

static int rec_flush(void *o)
{
  rec_log(o, CH_FLUSH, 0, NULL, 0);
  return 0;
}

static int rec_get_size(void *o, uint64_t *size)
{
  *size = ((struct recorder *)o)->size;
  return 0;
}

static int rec_set_size(void *o, uint64_t size)
{
  rec_resize(o, size);
  rec_log(o, CH_SET_SIZE, size, NULL, 0);
  return 0;
}

/* Trims punch holes: here zeros are written (logged like any write). */
static int rec_punch(void *o, uint64_t off, uint64_t len)
{
  uint8_t *zeros = calloc(1, (size_t)len);
  int r = rec_pwrite(o, zeros, (size_t)len, off);
  free(zeros);
  return r;
}

static void rec_close(void *o) { (void)o; }

/* Parents are host files (absolute paths). */
static int rec_open_related(void *o, const char *path, unsigned flags, vhd_io **out)
{
  (void)o;
  return vhd_io_open_file(path, flags & VHD_IO_RDWR, out);
}

static const struct vhd_io_ops rec_ops = {
  .pread = rec_pread,
  .pwrite = rec_pwrite,
  .flush = rec_flush,
  .get_size = rec_get_size,
  .set_size = rec_set_size,
  .punch_hole = rec_punch,
  .open_related = rec_open_related,
  .close = rec_close,
};

static vhd_io *recording_io(struct recorder *r, unsigned flags)
{
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_new(&rec_ops, r, "crash.vhdx", flags, &io), 0);
  return io;
}

/* A crash image being rebuilt. The file grows a block at a time, so the
 * buffer grows geometrically (cap): a realloc per new block copied the
 * whole image each time, which under ASan took minutes. */
struct bytes {
  uint8_t *p;
  size_t len, cap;
};

static void apply_change(struct bytes *b, const struct change *c)
{
  uint64_t end = c->op == CH_WRITE ? c->offset + c->len : c->offset;
  if (c->op == CH_FLUSH)
    return;
  if (end > b->len || c->op == CH_SET_SIZE) {
    if (end > b->cap) {
      size_t cap = 2 * b->cap > end ? 2 * b->cap : (size_t)end;
      b->p = realloc(b->p, cap);
      cr_assert_not_null(b->p);
      b->cap = cap;
    }
    if (end > b->len)
      memset(b->p + b->len, 0, (size_t)end - b->len);
    b->len = (size_t)end;
  }
  if (c->op == CH_WRITE)
    memcpy(b->p + c->offset, c->data, c->len);
}

static uint64_t below(uint64_t n) { return n ? tv_rnd() % n : 0; }

#define DISK (8 * MiB)
#define ROUNDS 8

/* Rounds of the workload: all of them, or half in the sanitizer pass
 * (VHD_TEST_SMALL=1, tests/CMakeLists.txt), where copying every crash image
 * several times costs minutes: the same kinds of crash points, fewer of
 * them. */
static int rounds_to_run(void)
{
  const char *small = getenv("VHD_TEST_SMALL");
  return small && strcmp(small, "1") == 0 ? ROUNDS / 2 : ROUNDS;
}

struct round {
  size_t first, end;          /* change log indexes [first, end) */
  uint8_t *before, *after;    /* the disk as the round found and left it */
};

/* Whole-disk contents of a crash image, or NULL when it does not open. The
 * image is served by a recorder (not logging) so a parent can be found. */
static uint8_t *read_image(const struct bytes *b, unsigned flags, bool *replayed)
{
  struct recorder r;
  memset(&r, 0, sizeof r);
  r.data = malloc(b->len ? b->len : 1);
  memcpy(r.data, b->p, b->len);
  r.size = b->len;
  vhd_image *img;
  vhd_io *io = recording_io(&r, (flags & VHD_OPEN_RDWR) ? VHD_IO_RDWR : VHD_IO_RDONLY);
  uint8_t *disk = NULL;
  if (vhd_open_io(io, VHD_FORMAT_VHDX, flags, &img) == 0) {
    struct vhd_info info;
    vhd_get_info(img, &info);
    if (replayed)
      *replayed = info.warnings > 0;
    disk = malloc(DISK);
    cr_assert_eq(vhd_pread(img, disk, DISK, 0), 0, "%s", vhd_last_error());
    cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  }
  free(r.data);
  return disk;
}

static void check_crash_image(const struct bytes *b, const struct round *r, const char *what)
{
  uint8_t *ro = read_image(b, VHD_OPEN_RDONLY, NULL);
  cr_assert_not_null(ro, "%s: crash image does not open: %s", what, vhd_last_error());
  for (size_t s = 0; s < DISK; s += 512)
    if (memcmp(ro + s, r->before + s, 512) != 0 && memcmp(ro + s, r->after + s, 512) != 0)
      cr_assert_fail("%s: sector %zu reads neither as before nor as after the round", what,
                     s / 512);
  struct recorder rc;
  memset(&rc, 0, sizeof rc);
  rc.data = b->p;
  rc.size = b->len;
  vhd_io *io = recording_io(&rc, VHD_IO_RDONLY);
  struct vhd_check_result res;
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0);
  cr_assert_eq(res.corruptions, 0u, "%s: vhd_check finds corruption", what);
  vhd_io_close(io);
  /* A read-write open replays onto the file; the disk reads the same. */
  uint8_t *rw = read_image(b, VHD_OPEN_RDWR, NULL);
  cr_assert_not_null(rw, "%s: read-write open failed: %s", what, vhd_last_error());
  cr_assert_eq(memcmp(ro, rw, DISK), 0, "%s: replay in memory and on disk differ", what);
  free(ro);
  free(rw);
}

static void crash_workload(uint32_t lss, uint64_t seed, bool differencing)
{
  tv_rng_state = seed;
  struct recorder f;
  memset(&f, 0, sizeof f);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.size = DISK;
  p.block_size = MiB;
  p.logical_sector_size = lss;
  uint8_t *model = calloc(1, DISK);
  vhd_image *img;
  if (differencing) {
    /* The parent holds a pattern in every other block; the child's
     * partial writes then mix both layers through sector bitmaps. */
    cr_assert_eq(vhd_create(parent_path, &p, &img), 0, "%s", vhd_last_error());
    for (uint64_t b = 0; b < DISK / MiB; b += 2)
      memset(model + b * MiB, (int)(0xA0 + b), MiB);
    cr_assert_eq(vhd_pwrite(img, model, DISK, 0), 0);
    cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
    p.type = VHD_TYPE_DIFFERENCING;
    p.parent = parent_path;
    p.size = 0;
  }
  cr_assert_eq(vhd_create_io(recording_io(&f, VHD_IO_RDWR), &p, &img), 0, "%s",
               vhd_last_error());
  struct bytes base = { malloc(f.size), f.size, f.size };
  memcpy(base.p, f.data, f.size);
  f.log = 1;

  struct round rounds[ROUNDS];
  const int nrounds = rounds_to_run();
  uint8_t *buf = malloc(DISK);
  for (int k = 0; k < nrounds; k++) {
    struct round *r = &rounds[k];
    r->first = f.n;
    r->before = malloc(DISK);
    memcpy(r->before, model, DISK);
    /* Each sector changes at most once per round, so "before or after"
     * is exact: the writes go to distinct 64 KiB slots. */
    uint8_t used[DISK / (64 * KiB)] = { 0 };
    int nops = 4 + (int)below(6);
    for (int i = 0; i < nops; i++) {
      uint64_t slot = below(DISK / (64 * KiB));
      if (used[slot])
        continue;
      if (!differencing && below(4) == 0 && k > 0) {
        /* Trim whole host pages inside the slot: a present block has them
         * punched (zeros), an absent one reads zeros already; such trims
         * add up to a freed block now and then. */
        used[slot] = 1;
        uint64_t first = below(16), n = 1 + below(16 - first);
        uint64_t off = slot * 64 * KiB + first * 4 * KiB;
        cr_assert_eq(vhd_discard(img, off, n * 4 * KiB), 0, "%s", vhd_last_error());
        memset(model + off, 0, n * 4 * KiB);
        continue;
      }
      if (below(5) == 0 && k > 0) {
        /* Trim a whole block whose slots are all unused this round. */
        uint64_t blk = slot * 64 * KiB / MiB, per = MiB / (64 * KiB), ok = 1;
        for (uint64_t s = blk * per; s < (blk + 1) * per; s++)
          ok &= !used[s];
        if (!ok)
          continue;
        for (uint64_t s = blk * per; s < (blk + 1) * per; s++)
          used[s] = 1;
        cr_assert_eq(vhd_discard(img, blk * MiB, MiB), 0, "%s", vhd_last_error());
        memset(model + blk * MiB, 0, MiB);
        continue;
      }
      used[slot] = 1;
      uint64_t len = lss * (1 + below(64 * KiB / lss));
      uint64_t off = slot * 64 * KiB;
      for (uint64_t j = 0; j < len; j++)
        buf[j] = (uint8_t)tv_rnd();
      cr_assert_eq(vhd_pwrite(img, buf, len, off), 0, "%s", vhd_last_error());
      memcpy(model + off, buf, len);
    }
    cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
    r->end = f.n;
    r->after = malloc(DISK);
    memcpy(r->after, model, DISK);
  }
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());

  /* Crash points: every flush inside a round and a few other changes. */
  unsigned images = 0;
  for (int k = 0; k < nrounds; k++) {
    struct round *r = &rounds[k];
    for (size_t pt = r->first + 1; pt <= r->end; pt++) {
      bool at_flush = f.changes[pt - 1].op == CH_FLUSH;
      if (below(at_flush ? 2 : 12) != 0)
        continue;
      /* Durable: everything up to the last flush before pt. */
      size_t durable = 0;
      for (size_t i = pt; i-- > 0;)
        if (f.changes[i].op == CH_FLUSH) {
          durable = i + 1;
          break;
        }
      for (int variant = (int)below(2); variant < 2; variant += 2) {
        struct bytes b = { malloc(base.len), base.len, base.len };
        memcpy(b.p, base.p, base.len);
        for (size_t i = 0; i < durable; i++)
          apply_change(&b, &f.changes[i]);
        for (size_t i = durable; i < pt; i++)
          if (variant == 0 ? below(2) == 0 : true)
            apply_change(&b, &f.changes[i]);
        char what[128];
        snprintf(what, sizeof what, "round %d, crash after change %zu of %zu-%zu (%s)", k, pt,
                 r->first, r->end, variant ? "all issued" : "random subset");
        check_crash_image(&b, r, what);
        images++;
        free(b.p);
      }
    }
    /* After vhd_flush returned, everything written is durable. */
    struct bytes b = { malloc(base.len), base.len, base.len };
    memcpy(b.p, base.p, base.len);
    for (size_t i = 0; i < r->end; i++)
      apply_change(&b, &f.changes[i]);
    uint8_t *got = read_image(&b, VHD_OPEN_RDONLY, NULL);
    cr_assert_not_null(got);
    cr_assert_eq(memcmp(got, r->after, DISK), 0, "round %d: flushed data lost", k);
    free(got);
    free(b.p);
  }
  cr_assert_gt(images, (unsigned)nrounds, "too few crash images checked");
  if (getenv("TV_DEBUG"))
    fprintf(stderr, "%u crash images, %zu changes\n", images, f.n);
  for (int k = 0; k < nrounds; k++) {
    free(rounds[k].before);
    free(rounds[k].after);
  }
  free(base.p);
  free(model);
  free(buf);
  for (size_t i = 0; i < f.n; i++)
    free(f.changes[i].data);
  free(f.changes);
  free(f.data);
}

Test(vhdx_crash, dynamic_512, .timeout = 240) { crash_workload(512, 21, false); }
Test(vhdx_crash, dynamic_4k, .timeout = 240) { crash_workload(4096, 22, false); }
Test(vhdx_crash, differencing_512, .init = setup, .fini = teardown, .timeout = 240)
{
  crash_workload(512, 23, true);
}
