/* SPDX-License-Identifier: BSD-3-Clause */
/* The VHD format driver: the whole interface at a glance. The pieces live
 * in the files of the structures they handle (footer.c, dyn_header.c,
 * bat.c, bitmap.c) and of the jobs that use them (vhd_open.c, vhd_rw.c,
 * vhd_create.c, vhd_parent.c). */
#include "vhd/vhd_priv.h"

const struct vhd_driver vhd_driver_vhd = {
  .name = "vhd",
  .format = VHD_FORMAT_VHD,
  .probe = vhd_fmt_probe,
  .open = vhd_fmt_open,
  .close = vhd_fmt_close,
  .read = vhd_fmt_read,
  .write = vhd_fmt_write,
  .flush = vhd_fmt_flush,
  .zero = vhd_fmt_zero,
  .discard = vhd_fmt_discard,
  .block_status = vhd_fmt_block_status,
  .host_extent = vhd_fmt_host_extent,
  .info = vhd_fmt_info,
  .create = vhd_fmt_create,
  .parent_candidates = vhd_fmt_parent_candidates,
  .parent_matches = vhd_fmt_parent_matches,
  .check = vhd_fmt_check,
  .resize = vhd_fmt_resize,
  .resize_room = vhd_fmt_resize_room,
  .set_parent = vhd_fmt_set_parent,
  .repair = vhd_fmt_repair,
  .compact = vhd_fmt_compact,
  .block_slot = vhd_fmt_block_slot,
  .pack_rules = vhd_fmt_pack_rules,
  .move_blocks = vhd_fmt_move_blocks,
  .structures_end = vhd_fmt_structures_end,
  .reset_id = vhd_fmt_reset_id,
};
