/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_compact: give back the space of blocks that read as zeros. The
 * format drivers free them block by block (freeable.h; the raw driver
 * punches holes over its zero ranges); then the blocks left are packed
 * toward the front by one plan for every format (pack_plan.c), which the
 * driver carries out with its own commit points. */
#include "driver.h"
#include "error.h"
#include "image.h"
#include "pack_plan.h"
#include "reserve.h"
#include "sized.h"
#include "util/arith.h"

/* The file's length, a vhdboot reserve included. */
static int file_length(vhd_io *io, uint64_t *out)
{
  struct reserve_record rec;
  if (reserve_io_get(io, &rec)) {
    *out = rec.phys;
    return 0;
  }
  return io_get_size(io, out);
}

/* Host bytes the file occupies, or its length when the backend cannot
 * tell (an in-memory file has no holes). */
static int host_bytes(vhd_io *io, uint64_t *out)
{
  return io_allocated_size(io, out) == 0 ? 0 : io_get_size(io, out);
}

/* The caller's progress over both phases: freeing reports the first
 * half, packing the second. */
struct phases {
  vhd_progress_fn fn;
  void *opaque;
  unsigned phase;
};
#define PHASE_UNITS 1000u

static int phase_progress(void *opaque, uint64_t done, uint64_t total)
{
  struct phases *p = opaque;
  uint64_t part = total ? done * (PHASE_UNITS / 2) / total : PHASE_UNITS / 2;
  return p->fn(p->opaque, p->phase * (PHASE_UNITS / 2) + part, PHASE_UNITS);
}

/* Move the blocks the driver has left toward the front. */
static int pack(vhd_image *img, struct phases *ph)
{
  struct pack_rules rules;
  struct pack_plan plan;
  memset(&rules, 0, sizeof rules);
  int r = img->drv->pack_rules(img, &rules);
  if (r == -ENOTSUP)
    return 0;
  if (r == 0)
    r = pack_plan_make(img, &rules, &plan);
  vhd_free(rules.fixed);
  if (r < 0)
    return r;
  ph->phase = 1;
  r = img->drv->move_blocks(img, &plan, ph->fn ? phase_progress : NULL, ph);
  pack_plan_free(&plan);
  return r;
}

int compact_image(vhd_image *img, unsigned flags, vhd_progress_fn progress, void *opaque,
                  struct vhd_compact_result *result)
{
  struct vhd_compact_result res;
  int r;

  vhd_error_clear();
  memset(&res, 0, sizeof res);
  if (flags)
    return vhd_error(EINVAL, "%s: compact takes no flags (got 0x%x)", img->path, flags);
  if (!img->writable)
    return vhd_error(EROFS, "%s: the image is open read-only; compact needs it read-write",
                     img->path);
  if ((r = file_length(img->io, &res.file_size_before)) < 0 ||
      (r = host_bytes(img->io, &res.host_bytes_before)) < 0)
    return r;

  if ((r = image_lock(img, true)) < 0)
    return r;
  struct phases ph = { progress, opaque, 0 };
  if (img->drv->compact)
    r = img->drv->compact(img, progress ? phase_progress : NULL, &ph, &res);
  else
    r = vhd_error(ENOTSUP, "%s: %s images cannot be compacted", img->path, img->drv->name);
  if (r == 0 && img->drv->pack_rules)
    r = pack(img, &ph);
  if (r == 0 && progress)
    progress(opaque, PHASE_UNITS, PHASE_UNITS);
  uint64_t reserve_freed;
  if (r == 0)
    r = reserve_io_release(img->io, &reserve_freed);   /* the file ends with the image */
  r = image_unlock(img, r);

  /* Sizes after are reported even after a failure or a cancel: the
   * image is valid either way and part of the work may be done. */
  if (file_length(img->io, &res.file_size_after) < 0 ||
      host_bytes(img->io, &res.host_bytes_after) < 0) {
    res.file_size_after = res.file_size_before;
    res.host_bytes_after = res.host_bytes_before;
  }
  if (result)
    *result = res;
  return r;
}
