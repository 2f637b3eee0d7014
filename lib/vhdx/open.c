/* SPDX-License-Identifier: BSD-3-Clause */
/* Opening a VHDX file in the spec's order (identifier, headers, log
 * replay, region table, metadata, BAT) and the driver table. */
#include "vhdx.h"
#include "error.h"

/* The identifier at offset 0. A read that fails is passed up (negative)
 * rather than taken for "not VHDX", so an I/O error cannot make the file
 * look like another format. */
static int vhdx_probe(vhd_io *io, uint64_t size)
{
  uint8_t sig[8];
  if (size < 8)
    return 0;
  int r = io_pread(io, sig, sizeof sig, 0);
  if (r < 0)
    return r;
  return memcmp(sig, "vhdxfile", 8) == 0 ? 100 : 0;
}

static int vhdx_open(struct vhd_image *img, struct vhd_diag *d)
{
  struct vhdx *s = vhd_calloc(1, sizeof *s);
  if (!s)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  img->priv = s;
  s->img = img;
  s->io = img->io;
  s->path = img->path;
  int r = io_get_size(s->io, &s->file_size);
  if (r == 0)
    r = vhdx_read_identifier(s, d);
  if (r == 0)
    r = vhdx_load_headers(s, d);
  /* The log is replayed into memory first; what it leaves is validated
   * like any file before a read-write open writes it (vhdx_log_apply). */
  if (r == 0)
    r = vhdx_log_open(s, d);
  if (r == 0)
    r = vhdx_load_regions(s, d);
  if (r == 0)
    r = vhdx_log_check_targets(s, d);
  if (r == 0)
    r = vhdx_load_metadata(s, d);
  if (r == 0)
    r = vhdx_compute_geometry(s, d);
  if (r == 0)
    r = vhdx_load_bat(s, d);
  if (r == 0)
    r = vhdx_validate_bat(s, d);
  if (r == 0 && s->log_apply_pending && d && d->result && d->result->corruptions)
    r = vhdx_fatal(d, "%s: the replayed log leaves damaged structures; it is not applied",
                   s->path);
  if (r == 0)
    r = vhdx_log_apply(s, d);
  if (r < 0)
    return r;
  img->type = s->has_parent ? VHD_TYPE_DIFFERENCING
              : s->leave_allocated ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC;
  img->virtual_size = s->virtual_size;
  img->sector_size = s->lss;
  if (s->has_parent)
    s->parent_hint = s->loc.relative_path ? s->loc.relative_path
                     : s->loc.absolute_win32_path ? s->loc.absolute_win32_path
                     : s->loc.volume_path;
  if (img->writable && (img->flags & VHD_OPEN_RENEW_LINK_ID)) {
    r = vhdx_header_update(s, VHDX_NEW_FILE_GUID | VHDX_NEW_DATA_GUID, NULL);
    s->guids_updated = r == 0;
  }
  return r;
}

static void vhdx_close(struct vhd_image *img)
{
  struct vhdx *s = vhdx_of(img);
  if (!s)
    return;
  vhdx_overlay_free(&s->overlay);
  vhdx_pending_free(s);
  vhd_free(s->pend);
  slots_free(&s->slots);
  vhd_free(s->bat);
  vhd_free(s->bat_dirty);
  vhdx_locator_free(&s->loc);
  vhd_free(s);
  img->priv = NULL;
}

static void vhdx_info(struct vhd_image *img, struct vhd_info *info)
{
  struct vhdx *s = vhdx_of(img);
  info->block_size = s->block_size;
  info->logical_sector_size = s->lss;
  info->physical_sector_size = s->pss;
  info->total_blocks = s->payload_blocks;
  uint64_t allocated = 0;
  for (uint64_t b = 0; b < s->payload_blocks; b++) {
    unsigned st = vhdx_block_state(s, b);
    if (st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT)
      allocated++;
  }
  info->allocated_blocks = allocated;
  info->free_slot_bytes = slots_count(&s->slots) * s->block_size;
  memcpy(info->creator, s->creator, sizeof info->creator);
  memcpy(info->id, s->disk_id, 16);
  memcpy(info->data_write_id, s->hdr.data_write_guid, 16);
  if (s->has_parent)
    memcpy(info->parent_id, s->linkage, 16);
  info->parent_hint = s->parent_hint;
}

const struct vhd_driver vhd_driver_vhdx = {
  .name = "vhdx",
  .format = VHD_FORMAT_VHDX,
  .probe = vhdx_probe,
  .open = vhdx_open,
  .close = vhdx_close,
  .read = vhdx_read,
  .write = vhdx_write,
  .flush = vhdx_flush,
  .zero = vhdx_zero,
  .discard = vhdx_discard,
  .block_status = vhdx_block_status,
  .host_extent = vhdx_host_extent,
  .info = vhdx_info,
  .create = vhdx_create,
  .parent_candidates = vhdx_parent_candidates,
  .parent_matches = vhdx_parent_matches,
  .check = vhdx_check,
  .resize = vhdx_resize,
  .resize_room = vhdx_resize_room,
  .set_parent = vhdx_set_parent,
  .repair = vhdx_repair,
  .reset_id = vhdx_reset_id,
  .compact = vhdx_compact,
  .block_slot = vhdx_block_slot,
  .pack_rules = vhdx_pack_rules,
  .move_blocks = vhdx_move_blocks,
  .structures_end = vhdx_image_end,
};
