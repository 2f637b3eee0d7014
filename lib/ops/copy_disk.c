/* copy_disk: the data phase of vhd_convert.
 *
 * Cost model (bench/README.md, "Where vhdtool convert's time goes"): the
 * copy is dominated by the kernel copying pages out of the source's page
 * cache and into the destination's. Three rules follow:
 *  - read only data: block status is asked once per extent, and reads are
 *    clipped to the data run it reports, so holes are never read;
 *  - overlap: a reader thread reads and scans for zeros while the calling
 *    thread writes, so on two CPUs both page-cache copies run at once;
 *  - pieces of 1 MiB at most, aligned to 1 MiB: they fill destination
 *    blocks in order, and smaller writes keep the host's page cache from
 *    asking for 2 MiB pages, which this kind of VM makes expensive. */
#include <pthread.h>
#include <string.h>

#include "copy_disk.h"
#include "error.h"
#include "image.h"
#include "util/zero.h"

#define PIECE (1u << 20)
#define NPIECES 4
/* Granularity of zero detection: small enough to leave holes in raw
 * outputs, large enough to keep the write calls few. */
#define ZERO_GRAIN (64u << 10)

struct span {
  uint32_t start, len;   /* inside the piece */
};

struct piece {
  uint64_t off;
  uint32_t len;
  unsigned nspans;       /* non-zero parts to write; 0 when all zeros */
  struct span spans[PIECE / ZERO_GRAIN + 1];
  uint8_t *data;
};

/* The reader's walk over the source. */
struct reader {
  vhd_image *src;
  uint64_t size;
  uint64_t off;        /* next byte to look at */
  uint64_t data_end;   /* end of the data run that off is in, if > off */
};

static void find_spans(struct piece *pc)
{
  uint32_t pos = 0;
  pc->nspans = 0;
  while (pos < pc->len) {
    /* grains sit on absolute multiples of ZERO_GRAIN */
    uint64_t abs_end = (pc->off + pos) / ZERO_GRAIN * ZERO_GRAIN + ZERO_GRAIN;
    uint32_t end = abs_end - pc->off < pc->len ? (uint32_t)(abs_end - pc->off) : pc->len;
    if (!buffer_is_zero(pc->data + pos, end - pos)) {
      struct span *last = pc->nspans ? &pc->spans[pc->nspans - 1] : NULL;
      if (last && last->start + last->len == pos)
        last->len += end - pos;
      else
        pc->spans[pc->nspans++] = (struct span){ pos, end - pos };
    }
    pos = end;
  }
}

/* Fill pc with the next piece of data. 1: filled, 0: nothing left. */
static int read_piece(struct reader *rd, struct piece *pc)
{
  while (rd->off < rd->size) {
    if (rd->off >= rd->data_end) {
      unsigned status;
      uint64_t run;
      int r = vhd_block_status(rd->src, rd->off, rd->size - rd->off, &status, &run, NULL);
      if (r < 0)
        return r;
      if ((status & VHD_STATUS_ZERO) && !(status & VHD_STATUS_DATA)) {
        rd->off += run;   /* the new image already reads zeros there */
        continue;
      }
      rd->data_end = rd->off + run;
    }
    uint64_t end = (rd->off / PIECE + 1) * PIECE;
    if (end > rd->data_end)
      end = rd->data_end;
    pc->off = rd->off;
    pc->len = (uint32_t)(end - rd->off);
    int r = vhd_pread(rd->src, pc->data, pc->len, pc->off);
    if (r < 0)
      return r;
    find_spans(pc);
    rd->off = end;
    return 1;   /* even when all zeros: the writer reports progress */
  }
  return 0;
}

static int write_piece(vhd_image *dst, const struct piece *pc)
{
  for (unsigned i = 0; i < pc->nspans; i++) {
    const struct span *s = &pc->spans[i];
    int r = vhd_pwrite(dst, pc->data + s->start, s->len, pc->off + s->start);
    if (r < 0)
      return r;
  }
  return 0;
}

struct copy {
  vhd_image *dst;
  uint64_t size;
  vhd_progress_fn progress;
  void *opaque;
  struct reader rd;
  struct piece pieces[NPIECES];
  pthread_mutex_t lock;
  pthread_cond_t changed;   /* either side moved */
  unsigned filled;          /* pieces the reader has produced */
  unsigned consumed;        /* pieces the writer has finished with */
  bool reader_done;         /* at the end, or failed (err) */
  bool stop;                /* the writer gave up: the reader stops too */
  int err;
  char msg[sizeof ((struct vhd_error_slot *)0)->message];
};

static int after_write(struct copy *c, const struct piece *pc)
{
  if (c->progress && c->progress(c->opaque, pc->off + pc->len, c->size))
    return vhd_error(ECANCELED, "%s: conversion cancelled", c->dst->path);
  return 0;
}

static void *reader_main(void *arg)
{
  struct copy *c = arg;
  for (;;) {
    pthread_mutex_lock(&c->lock);
    while (c->filled - c->consumed == NPIECES && !c->stop)
      pthread_cond_wait(&c->changed, &c->lock);
    bool stop = c->stop;
    struct piece *pc = &c->pieces[c->filled % NPIECES];
    pthread_mutex_unlock(&c->lock);
    if (stop)
      return NULL;

    int r = read_piece(&c->rd, pc);

    pthread_mutex_lock(&c->lock);
    if (r > 0) {
      c->filled++;
    } else {
      c->reader_done = true;
      if (r < 0) {
        /* The message lives in this thread's error slot: hand it over. */
        c->err = r;
        size_t n = strlen(vhd_last_error());
        if (n >= sizeof c->msg)
          n = sizeof c->msg - 1;
        memcpy(c->msg, vhd_last_error(), n);
        c->msg[n] = '\0';
      }
    }
    pthread_cond_signal(&c->changed);
    pthread_mutex_unlock(&c->lock);
    if (r <= 0)
      return NULL;
  }
}

static int write_all(struct copy *c)
{
  int r = 0;
  for (;;) {
    pthread_mutex_lock(&c->lock);
    while (c->filled == c->consumed && !c->reader_done)
      pthread_cond_wait(&c->changed, &c->lock);
    bool empty = c->filled == c->consumed;
    struct piece *pc = &c->pieces[c->consumed % NPIECES];
    pthread_mutex_unlock(&c->lock);
    if (empty)
      break;   /* the reader is done and everything is written */

    r = write_piece(c->dst, pc);
    if (r == 0)
      r = after_write(c, pc);

    pthread_mutex_lock(&c->lock);
    c->consumed++;
    if (r < 0)
      c->stop = true;
    pthread_cond_signal(&c->changed);
    pthread_mutex_unlock(&c->lock);
    if (r < 0)
      break;
  }
  return r;
}

/* Without a second thread (pthread_create failed): the same steps in turn. */
static int copy_in_turn(struct copy *c)
{
  struct piece *pc = &c->pieces[0];
  int r;
  while ((r = read_piece(&c->rd, pc)) > 0) {
    r = write_piece(c->dst, pc);
    if (r == 0)
      r = after_write(c, pc);
    if (r < 0)
      return r;
  }
  return r;
}

int copy_disk(vhd_image *src, vhd_image *dst, uint64_t size,
              vhd_progress_fn progress, void *opaque)
{
  struct copy *c = vhd_calloc(1, sizeof *c);
  uint8_t *buf = vhd_aligned_alloc(4096, (size_t)NPIECES * PIECE);
  if (!c || !buf) {
    vhd_free(c);
    vhd_aligned_free(buf);
    return vhd_error(ENOMEM, "%s: out of memory for the copy buffers", dst->path);
  }
  c->dst = dst;
  c->size = size;
  c->progress = progress;
  c->opaque = opaque;
  c->rd = (struct reader){ .src = src, .size = size };
  for (unsigned i = 0; i < NPIECES; i++)
    c->pieces[i].data = buf + (size_t)i * PIECE;

  int r;
  pthread_t reader;
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->changed, NULL);
  if (pthread_create(&reader, NULL, reader_main, c) == 0) {
    r = write_all(c);
    pthread_join(reader, NULL);
    if (r == 0 && c->err)
      r = vhd_error(-c->err, "%s", c->msg);
  } else {
    r = copy_in_turn(c);
  }
  if (r == 0 && progress && progress(opaque, size, size))
    r = vhd_error(ECANCELED, "%s: conversion cancelled", dst->path);
  pthread_cond_destroy(&c->changed);
  pthread_mutex_destroy(&c->lock);
  vhd_aligned_free(buf);
  vhd_free(c);
  return r;
}
