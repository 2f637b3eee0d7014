/* SPDX-License-Identifier: BSD-3-Clause */
/* Compact's packing plan, one for every format: which blocks move where,
 * decided from where the driver says each block lies (block_slot) and
 * where it lets blocks go (pack_rules); the driver's move_blocks then
 * carries the moves out, with its own commit points (driver.h). */
#ifndef LIBVHD_OPS_PACK_PLAN_H
#define LIBVHD_OPS_PACK_PLAN_H

#include "driver.h"

/* The plan that packs img's blocks toward the front (plan->n == 0 when
 * nothing moves). Image lock held. */
int pack_plan_make(struct vhd_image *img, const struct pack_rules *rules,
                   struct pack_plan *plan);
void pack_plan_free(struct pack_plan *plan);

#endif
