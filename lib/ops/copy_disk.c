/* SPDX-License-Identifier: BSD-3-Clause */
/* copy_disk: the data phase of vhd_convert.
 *
 * Cost model (bench/README.md, "Where vhdtool convert's time goes"): the
 * copy is dominated by the kernel copying pages out of the source's page
 * cache and into the destination's, and on a VM whose free memory goes back
 * to the host, by the host faulting in the fresh pages the destination's
 * cache takes. Three rules follow:
 *  - read only data: block status is asked once per extent, and reads are
 *    clipped to the data run it reports, so holes are never read;
 *  - two workers, the caller's thread and a helper, each take the next
 *    1 MiB piece, read it and look for zeros while the other writes, so
 *    both CPUs copy pages; the writes themselves go one at a time in the
 *    source's order (parallel writes into one file only make the second
 *    writer spin on the file's lock in the kernel);
 *  - pieces aligned to 1 MiB: they fill destination blocks in order. The
 *    file backend hands them to the kernel in writes of at most 256 KiB
 *    (lib/io/file.c says why: on this kind of VM that alone made a
 *    conversion into raw 3-4 times faster when the page cache was cold). */
#include <pthread.h>

#include "copy_disk.h"
#include "error.h"
#include "image.h"
#include "util/strfmt.h"
#include "util/zero.h"

#define PIECE (1u << 20)
#define NWORKERS 2
/* Granularity of zero detection: small enough to leave holes in raw
 * outputs, large enough to keep the write calls few. */
#define ZERO_GRAIN (64u << 10)

struct span {
  uint32_t start, len;   /* inside the piece */
};

struct piece {
  uint64_t off;
  uint32_t len;
  uint64_t seq;          /* order in which pieces are handed out and written */
  unsigned nspans;       /* non-zero parts to write; 0 when all zeros */
  struct span spans[PIECE / ZERO_GRAIN + 1];
  uint8_t *data;
};

/* The walk over the source that hands out pieces. */
struct walk {
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

/* The next piece of data to copy, set in pc->off and pc->len.
 * 1: one, 0: nothing left, < 0: block status failed. */
static int next_piece(struct walk *w, struct piece *pc)
{
  while (w->off < w->size) {
    if (w->off >= w->data_end) {
      unsigned status;
      uint64_t run;
      int r = vhd_block_status(w->src, w->off, w->size - w->off, &status, &run, NULL);
      if (r < 0)
        return r;
      if ((status & VHD_STATUS_ZERO) && !(status & VHD_STATUS_DATA)) {
        w->off += run;   /* the new image already reads zeros there */
        continue;
      }
      w->data_end = w->off + run;
    }
    uint64_t end = (w->off / PIECE + 1) * PIECE;
    if (end > w->data_end)
      end = w->data_end;
    pc->off = w->off;
    pc->len = (uint32_t)(end - w->off);
    w->off = end;
    return 1;
  }
  return 0;
}

struct copy {
  vhd_image *src, *dst;
  uint64_t size;
  pthread_mutex_t lock;     /* over everything below */
  pthread_cond_t turn_cv;   /* write_turn moved or stop was set */
  struct walk walk;
  uint64_t next_seq;        /* number of the next piece handed out */
  uint64_t write_turn;      /* number of the piece whose turn it is to write */
  uint64_t done_to;         /* end of the furthest piece copied, for progress */
  bool stop;                /* a worker failed or the caller cancelled */
};

/* Take the next piece. 1: taken, 0: nothing left or stopped, < 0: error. */
static int take_piece(struct copy *c, struct piece *pc)
{
  pthread_mutex_lock(&c->lock);
  int r = c->stop ? 0 : next_piece(&c->walk, pc);
  if (r > 0)
    pc->seq = c->next_seq++;
  pthread_mutex_unlock(&c->lock);
  return r;
}

/* Wait until the pieces before pc are written. false: the copy stopped. */
static bool wait_turn(struct copy *c, const struct piece *pc)
{
  pthread_mutex_lock(&c->lock);
  while (c->write_turn != pc->seq && !c->stop)
    pthread_cond_wait(&c->turn_cv, &c->lock);
  bool go = !c->stop;
  pthread_mutex_unlock(&c->lock);
  return go;
}

/* Done with pc (r: how it went): the next piece's turn. Returns how far
 * the copy has got. */
static uint64_t finish_piece(struct copy *c, const struct piece *pc, int r)
{
  pthread_mutex_lock(&c->lock);
  if (r < 0)
    c->stop = true;
  c->write_turn = pc->seq + 1;
  if (pc->off + pc->len > c->done_to)
    c->done_to = pc->off + pc->len;
  uint64_t done = c->done_to;
  pthread_cond_broadcast(&c->turn_cv);
  pthread_mutex_unlock(&c->lock);
  return done;
}

/* A worker failed or the caller cancelled: the others stop. */
static void stop_copy(struct copy *c)
{
  pthread_mutex_lock(&c->lock);
  c->stop = true;
  pthread_cond_broadcast(&c->turn_cv);
  pthread_mutex_unlock(&c->lock);
}

/* Read pc, find its data, and write that in pc's turn, so the output is
 * written in the source's order, exactly as by one thread: the same file
 * for the same input, blocks allocated in order. 1: copied, 0: the copy
 * stopped before pc's turn, < 0: error. */
static int copy_piece(struct copy *c, struct piece *pc)
{
  int r = vhd_pread(c->src, pc->data, pc->len, pc->off);
  if (r < 0)
    return r;
  find_spans(pc);
  if (!wait_turn(c, pc))
    return 0;
  for (unsigned i = 0; i < pc->nspans && r == 0; i++) {
    const struct span *s = &pc->spans[i];
    r = vhd_pwrite(c->dst, pc->data + s->start, s->len, pc->off + s->start);
  }
  return r < 0 ? r : 1;
}

struct worker {
  struct copy *c;
  struct piece piece;
  int r;
  char msg[sizeof ((struct vhd_error_slot *)0)->message];   /* a helper's error */
};

static int cancelled(struct copy *c)
{
  stop_copy(c);
  return vhd_error(ECANCELED, "%s: conversion cancelled", c->dst->path);
}

/* The walk is exhausted; the helpers may still be copying the last
 * pieces. The caller's thread goes on reporting each of them, so progress
 * and a cancel keep pace however the pieces were shared out (on a busy
 * machine the helpers can take every piece). */
static int report_rest(struct copy *c, uint64_t shown, vhd_progress_fn progress, void *opaque)
{
  pthread_mutex_lock(&c->lock);
  while (!c->stop) {
    uint64_t done = c->done_to;
    if (done > shown) {
      shown = done;
      pthread_mutex_unlock(&c->lock);
      if (progress(opaque, done, c->size))
        return cancelled(c);
      pthread_mutex_lock(&c->lock);
      continue;
    }
    if (c->write_turn == c->next_seq)
      break;
    pthread_cond_wait(&c->turn_cv, &c->lock);
  }
  pthread_mutex_unlock(&c->lock);
  return 0;
}

/* One worker's loop; the caller's worker (the one given progress) also
 * reports progress, from the caller's thread only. */
static int work(struct copy *c, struct piece *pc, vhd_progress_fn progress, void *opaque)
{
  int r;
  uint64_t shown = 0;
  while ((r = take_piece(c, pc)) > 0) {
    r = copy_piece(c, pc);
    if (r == 0)
      return 0;   /* stopped by the other worker, which has the error */
    uint64_t done = finish_piece(c, pc, r);
    if (r < 0)
      return r;
    if (progress) {
      shown = done;
      if (progress(opaque, done, c->size))
        return cancelled(c);
    }
  }
  if (r < 0)
    stop_copy(c);
  else if (progress)
    r = report_rest(c, shown, progress, opaque);
  return r;
}

static void *helper_main(void *arg)
{
  struct worker *w = arg;
  w->r = work(w->c, &w->piece, NULL, NULL);
  if (w->r < 0)   /* the message lives in this thread's error slot: hand it over */
    vhd_snprintf(w->msg, sizeof w->msg, "%s", vhd_last_error());
  return NULL;
}

int copy_disk(vhd_image *src, vhd_image *dst, uint64_t size,
              vhd_progress_fn progress, void *opaque)
{
  struct copy *c = vhd_calloc(1, sizeof *c);
  struct worker *w = vhd_calloc(NWORKERS, sizeof *w);
  uint8_t *buf = vhd_aligned_alloc(4096, (size_t)NWORKERS * PIECE);
  if (!c || !w || !buf) {
    vhd_free(c);
    vhd_free(w);
    vhd_aligned_free(buf);
    return vhd_error(ENOMEM, "%s: out of memory for the copy buffers", dst->path);
  }
  c->src = src;
  c->dst = dst;
  c->size = size;
  c->walk = (struct walk){ .src = src, .size = size };
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->turn_cv, NULL);
  for (unsigned i = 0; i < NWORKERS; i++) {
    w[i].c = c;
    w[i].piece.data = buf + (size_t)i * PIECE;
  }

  /* w[0] is the caller's; a helper that cannot start leaves it all to it. */
  pthread_t helper[NWORKERS];
  bool started[NWORKERS] = { false };
  for (unsigned i = 1; i < NWORKERS; i++)
    started[i] = pthread_create(&helper[i], NULL, helper_main, &w[i]) == 0;
  int r = work(c, &w[0].piece, progress, opaque);
  for (unsigned i = 1; i < NWORKERS; i++) {
    if (!started[i])
      continue;
    pthread_join(helper[i], NULL);
    if (r == 0 && w[i].r < 0)
      r = vhd_error(-w[i].r, "%s", w[i].msg);
  }
  if (r == 0 && progress && progress(opaque, size, size))
    r = vhd_error(ECANCELED, "%s: conversion cancelled", dst->path);
  pthread_cond_destroy(&c->turn_cv);
  pthread_mutex_destroy(&c->lock);
  vhd_aligned_free(buf);
  vhd_free(w);
  vhd_free(c);
  return r;
}
