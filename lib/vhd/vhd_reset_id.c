/* A new unique_id for a VHD (vhd_reset_id). The footer holds it; the
 * children of this image name it in their parent_unique_id.
 *
 * A dynamic or differencing image has two footers. The copy at offset 0
 * is written and made durable first: should the footer at the end then be
 * torn by a crash, the open falls back to the copy, which already holds
 * the new id; a crash before leaves both with the old id, or an intact
 * end footer with the old id and a copy the open reports as differing.
 * Every case opens. */
#include "vhd/vhd_priv.h"

int vhd_fmt_reset_id(struct vhd_image *img)
{
  struct vhd_state *s = vhd_state(img);
  vhd_uuid_generate(s->footer.unique_id);
  int r = 0;
  if (vhd_is_sparse(s)) {
    r = vhd_write_footer_at(img, s, 0);
    if (r == 0)
      r = io_flush(img->io);
  }
  if (r == 0)
    r = vhd_write_footer_at(img, s, s->footer_pos);
  if (r == 0)
    r = io_flush(img->io);
  if (r == 0)
    s->footer_from_copy = s->copy_mismatch = s->footer_short = false;
  else
    s->footer_dirty = true;  /* memory holds the new id: the next flush retries */
  return r;
}
