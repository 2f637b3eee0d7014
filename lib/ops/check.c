/* vhd_check: run the driver's open in collecting mode (diag.h), then its
 * whole-file checks, then the parent link, reporting every finding. */
#include "driver.h"
#include "error.h"
#include "image.h"

/* vhd_check_io borrows the caller's io; the image layer owns what it is
 * given, so hand it a forwarding wrapper whose close does nothing. */
static int fwd_pread(void *o, void *b, size_t n, uint64_t off) { vhd_io *io = o; return io->ops->pread(io->opaque, b, n, off); }
static int fwd_get_size(void *o, uint64_t *s) { vhd_io *io = o; return io->ops->get_size(io->opaque, s); }
static int fwd_find_data(void *o, uint64_t off, uint64_t *d, uint64_t *h)
{
  vhd_io *io = o;
  return io->ops->find_data ? io->ops->find_data(io->opaque, off, d, h) : -ENOTSUP;
}
static int fwd_open_related(void *o, const char *path, unsigned flags, vhd_io **out)
{
  vhd_io *io = o;
  return io_open_related(io, path, flags, out);
}
static void fwd_close(void *o) { (void)o; }

static const struct vhd_io_ops borrowed_ops = {
  .pread = fwd_pread,
  .get_size = fwd_get_size,
  .find_data = fwd_find_data,
  .open_related = fwd_open_related,
  .close = fwd_close,
};

/* Errors that mean "the file is damaged" rather than "could not look". */
static bool is_finding(int r)
{
  return r == -EINVAL || r == -ELOOP || r == -ENOENT || r == -EMEDIUMTYPE ||
         r == -ERANGE || r == -EOVERFLOW || r == -EFBIG || r == -ENOTSUP;
}

int vhd_check_io(vhd_io *io, unsigned flags, vhd_check_report_fn report,
                 void *opaque, struct vhd_check_result *result)
{
  vhd_error_clear();
  (void)flags;
  memset(result, 0, sizeof *result);
  struct vhd_diag d = { report, opaque, result };
  vhd_io *borrowed;
  int r = vhd_io_new(&borrowed_ops, io, io->name, VHD_IO_RDONLY, &borrowed);
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
    return 0;
  }
  result->format = img->drv->format;
  result->type = img->type;
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
    r = chain_open_parents(img, NULL, 0);
    if (r < 0) {
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
  vhd_error_clear();
  return 0;
}

int vhd_check(const char *path, unsigned flags, vhd_check_report_fn report,
              void *opaque, struct vhd_check_result *result)
{
  vhd_io *io;
  memset(result, 0, sizeof *result);
  int r = vhd_io_open_file(path, VHD_IO_RDONLY, &io);
  if (r < 0)
    return r;
  r = vhd_check_io(io, flags, report, opaque, result);
  vhd_io_close(io);
  return r;
}
