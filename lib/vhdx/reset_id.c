/* SPDX-License-Identifier: BSD-3-Clause */
/* A new identity for a VHDX (vhd_reset_id): the Virtual Disk ID item (the
 * SCSI page 83 id a guest sees, what Hyper-V's Set-VHD
 * -ResetDiskIdentifier changes) and the data_write_guid (what children's
 * parent_linkage names, and so what tells clones apart in a chain). The
 * item goes through the log and the header through the two-slot update,
 * so a crash leaves the old id or the new one, and an image that opens. */
#include "vhdx.h"

int vhdx_reset_id(struct vhd_image *img)
{
  struct vhdx *s = vhdx_of(img);
  uint8_t id[16];
  vhdx_new_guid(id);
  int r = vhdx_meta_write(s, s->disk_id_offset, id, sizeof id);
  if (r < 0) {
    s->broken = true;  /* never let a later flush write a half-laid change */
    return r;
  }
  r = vhdx_header_update(s, VHDX_NEW_FILE_GUID | VHDX_NEW_DATA_GUID, NULL);
  if (r == 0)
    r = vhdx_log_commit(s);
  if (r == 0) {
    memcpy(s->disk_id, id, sizeof id);
    s->guids_updated = true;
  }
  return r;
}
