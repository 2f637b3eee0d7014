/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_check: run the driver's open in collecting mode (diag.h), then its
 * whole-file checks, then the parent link, reporting every finding.
 *
 * With VHD_CHECK_REPAIR a first pass opens the file read-write in
 * collecting mode and lets the driver fix what the findings allow; what it
 * found there is reported as notes ("found: ..."), each change as
 * "repaired: ...". The ordinary check then runs on the result, so the
 * counts describe the image as it is after the repair. */
#include "driver.h"
#include "error.h"
#include "image.h"
#include "sized.h"
#include "reserve.h"
#include "util/strfmt.h"

/* vhd_check_io borrows the caller's io; the image layer owns what it is
 * given, so it is handed a wrapper that leaves the io open (io_wrap). */

/* Errors that mean "the file is damaged" rather than "could not look".
 * A file of a format this library does not read (EMEDIUMTYPE) is not a
 * damaged image: check could not look. */
static bool is_finding(int r)
{
  return r == -EINVAL || r == -ELOOP || r == -ENOENT || r == -ERANGE ||
         r == -EOVERFLOW || r == -EFBIG || r == -ENOTSUP;
}

/* The parent could not be reached, as opposed to a parent that is there
 * and wrong: not found, refused by the open's policy (outside the allowed
 * directories, a raw file), not a file at all (a FIFO), or held by a
 * writer. None says anything about this file. */
static bool parent_unreachable(int r)
{
  return r == -ENOENT || r == -EPERM || r == -EACCES || r == -ESPIPE || r == -ENODEV ||
         r == -EBUSY;
}

/* A parent that is not there is not damage to this file: like qemu-img
 * check, fail with the reason (the check could not run to the end). When
 * the file itself is corrupt that verdict stands and the missing parent is
 * a note. A parent that is there but is not the right one stays a
 * corruption: the chain is broken. */
static int parent_missing(struct vhd_diag *d, struct vhd_image *img,
                          const struct vhd_check_result *result)
{
  char why[1024];
  vhd_snprintf(why, sizeof why, "%s", vhd_last_error());
  image_free(img);
  if (result->corruptions) {
    diag_info(d, "%s (so the parent link was not checked)", why);
    diag_finish(d);
    vhd_error_clear();
    return 0;
  }
  diag_finish(d);
  return vhd_error(ENOENT, "%s", why);
}

/* Findings of the repair pass go to the caller as notes: the counts that
 * matter are those of the check after it. */
struct relay {
  vhd_check_report_fn report;
  void *opaque;
};

static void relay_finding(void *opaque, enum vhd_check_severity sev, const char *message)
{
  struct relay *rl = opaque;
  if (!rl->report)
    return;
  if (sev == VHD_CHECK_INFO) {
    rl->report(rl->opaque, sev, message);
    return;
  }
  char line[1100];
  vhd_snprintf(line, sizeof line, "found: %s", message);
  rl->report(rl->opaque, VHD_CHECK_INFO, line);
}

static int repair_pass(vhd_io *io, vhd_check_report_fn report, void *opaque,
                       unsigned *repairs)
{
  if (!io_writable(io))
    return vhd_error(EROFS, "%s: cannot repair: the file is open read-only", io->name);
  struct relay rl = { report, opaque };
  struct vhd_check_result seen;
  memset(&seen, 0, sizeof seen);
  struct vhd_diag d = { .report = relay_finding, .opaque = &rl, .result = &seen };
  vhd_io *borrowed;
  int r = io_wrap(io, VHD_IO_RDWR, NULL, NULL, &borrowed);
  if (r < 0)
    return r;
  struct vhd_image *img;
  r = image_open_layer(borrowed, NULL, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT, &d, &img);
  if (r < 0) {
    /* Nothing the drivers can work on; the check that follows says why. */
    if (!is_finding(r))
      return r;
    diag_info(&d, "not repaired: %s: the image cannot be opened for repair", io->name);
    diag_finish(&d);
    return 0;
  }
  if (img->drv->repair) {
    r = image_lock(img, true);
    if (r == 0)
      r = image_unlock(img, img->drv->repair(img, &d));
  } else {
    diag_info(&d, "%s: nothing to repair in a %s image", img->path, img->drv->name);
  }
  uint64_t freed;
  if (r == 0 && (r = reserve_io_release(img->io, &freed)) == 0 && freed)
    diag_repaired(&d, "%s: gave back the vhdboot reserve: the file ends with the "
                  "image now (%llu bytes fewer)", img->path, (unsigned long long)freed);
  int rc = vhd_close(img);
  diag_finish(&d);
  *repairs = seen.repairs;
  return r < 0 ? r : rc;
}

/* The open parameters a check honours when it opens the parents. */
#define CHECK_PARENT_FLAGS (VHD_OPEN_RAW_PARENT | VHD_OPEN_FORCE_SHARE | VHD_OPEN_PARENTS_BESIDE)

static int check_pass(vhd_io *io, unsigned open_flags, const struct parent_roots *roots,
                      vhd_check_report_fn report, void *opaque,
                      struct vhd_check_result *result)
{
  struct vhd_diag d = { .report = report, .opaque = opaque, .result = result };
  vhd_io *borrowed;
  int r = io_wrap(io, VHD_IO_RDONLY, NULL, NULL, &borrowed);
  if (r < 0)
    return r;
  struct vhd_image *img;
  r = image_open_layer(borrowed, NULL, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, &d, &img);
  if (r < 0) {
    if (!is_finding(r))
      return r;
    /* A driver that cannot go on reports the finding itself, then fails;
     * report the failure only when it did not. */
    if (result->corruptions == 0)
      diag_corrupt(&d, "%s", vhd_last_error());
    diag_finish(&d);
    return 0;
  }
  result->format = img->drv->format;
  result->type = img->type;
  struct vhd_reserve rs;
  if (vhd_get_reserve(img, &rs) == 0)
    diag_info(&d, "%s: the image ends at offset %llu; %llu bytes after it are vhdboot's rw "
              "reserve (%llu free for new blocks, then its record), not leaked space; "
              "'vhdtool compact' or 'check --repair' gives it back", img->path,
              (unsigned long long)rs.logical_size,
              (unsigned long long)(rs.physical_size - rs.logical_size),
              (unsigned long long)rs.free_bytes);
  if (img->drv->check) {
    r = img->drv->check(img, &d);
    if (r < 0 && !is_finding(r)) {
      image_free(img);
      return r;
    }
    if (r < 0)
      diag_corrupt(&d, "%s", vhd_last_error());
  }
  if (img->type == VHD_TYPE_DIFFERENCING) {
    img->flags &= ~VHD_OPEN_NO_PARENT;
    img->flags |= open_flags & CHECK_PARENT_FLAGS;
    r = parent_roots_copy(roots, &img->roots) < 0 ?
      vhd_error(ENOMEM, "%s: out of memory", img->path) :
      chain_open_parents(img, NULL, 0);
    if (r < 0) {
      if (parent_unreachable(r))
        return parent_missing(&d, img, result);
      if (!is_finding(r)) {
        image_free(img);
        return r;
      }
      diag_corrupt(&d, "%s", vhd_last_error());
    } else {
      diag_info(&d, "%s: parent %s found and matches", img->path, img->parent_path);
    }
  }
  image_free(img);
  diag_finish(&d);
  vhd_error_clear();
  return 0;
}

static int check_io(vhd_io *io, unsigned open_flags, const struct parent_roots *roots,
                    unsigned flags, vhd_check_report_fn report, void *opaque,
                    struct vhd_check_result *result)
{
  vhd_error_clear();
  memset(result, 0, sizeof *result);
  if (flags & ~VHD_CHECK_REPAIR)
    return vhd_error(EINVAL, "%s: unknown check flags 0x%x", io->name, flags);
  unsigned repairs = 0;
  if (flags & VHD_CHECK_REPAIR) {
    int r = repair_pass(io, report, opaque, &repairs);
    if (r < 0)
      return r;
  }
  int r = check_pass(io, open_flags, roots, report, opaque, result);
  result->repairs = repairs;
  return r;
}

int check_on_io(vhd_io *io, unsigned flags, vhd_check_report_fn report,
                void *opaque, struct vhd_check_result *result)
{
  return check_io(io, 0, NULL, flags, report, opaque, result);
}

int check_on_path(const char *path, const struct vhd_open_params *p, unsigned flags,
                  vhd_check_report_fn report, void *opaque,
                  struct vhd_check_result *result)
{
  vhd_error_clear();
  memset(result, 0, sizeof *result);
  if ((flags & VHD_CHECK_REPAIR) && (p->flags & VHD_OPEN_FORCE_SHARE))
    return vhd_error(EINVAL, "%s: force-share is for read-only opens: a repair must hold "
                     "the image alone", path);
  unsigned io_flags = (flags & VHD_CHECK_REPAIR) ? VHD_IO_RDWR :
    VHD_IO_RDONLY | ((p->flags & VHD_OPEN_FORCE_SHARE) ? VHD_IO_NOLOCK : 0);
  vhd_io *io;
  struct parent_roots *roots;
  int r = open_top_file(path, p, io_flags, &io, &roots);
  if (r < 0)
    return r;
  r = check_io(io, p->flags, roots, flags, report, opaque, result);
  parent_roots_free(roots);
  vhd_io_close(io);
  return r;
}
