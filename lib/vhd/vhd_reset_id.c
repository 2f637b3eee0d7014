/* SPDX-License-Identifier: BSD-3-Clause */
/* A new unique_id for a VHD (vhd_reset_id). The footer holds it; the
 * children of this image name it in their parent_unique_id.
 *
 * A dynamic or differencing image has two footers, and a valid copy at
 * offset 0 that names another id than the footer at the end is a
 * corruption the open refuses (which of the two is right cannot be told).
 * So the copy is blanked first (a missing copy is only a warning), then
 * the footer at the end gets the new id, then the copy again, each step
 * made durable before the next: a crash between any two leaves one valid
 * footer with the old or the new id. A sector write is taken to be atomic,
 * as every in-place footer update of this driver does. */
#include "vhd/vhd_priv.h"

static int write_durably(struct vhd_image *img, struct vhd_state *s, uint64_t pos,
                         bool blank)
{
  static const uint8_t zeros[VHD_FOOTER_SIZE];
  int r = blank ? io_pwrite(img->io, zeros, sizeof zeros, pos)
                : vhd_write_footer_at(img, s, pos);
  return r < 0 ? r : io_flush(img->io);
}

int vhd_fmt_reset_id(struct vhd_image *img)
{
  struct vhd_state *s = vhd_state(img);
  bool two = vhd_is_sparse(s);
  vhd_uuid_generate(s->footer.unique_id);
  int r = two ? write_durably(img, s, 0, true) : 0;
  if (r == 0)
    r = write_durably(img, s, s->footer_pos, false);
  if (r == 0 && two)
    r = write_durably(img, s, 0, false);
  if (r == 0)
    s->footer_from_copy = s->copy_mismatch = s->footer_short = false;
  else
    s->footer_dirty = true;  /* memory holds the new id: the next flush writes both */
  return r;
}
