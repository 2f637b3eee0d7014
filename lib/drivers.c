/* SPDX-License-Identifier: BSD-3-Clause */
/* The format drivers, in probing order: the most specific first; raw
 * accepts anything and comes last. */
#include "driver.h"

const struct vhd_driver *const vhd_drivers[] = {
  &vhd_driver_vhdx,
  &vhd_driver_vhd,
  &vhd_driver_vdi,
#if __STDC_HOSTED__
  &vhd_driver_qcow2,   /* these need zlib, which the freestanding loader lacks */
  &vhd_driver_vmdk,
#endif
  &vhd_driver_raw,
  NULL,
};

const struct vhd_driver *driver_for_format(enum vhd_format format)
{
  for (size_t i = 0; vhd_drivers[i]; i++)
    if (vhd_drivers[i]->format == format)
      return vhd_drivers[i];
  return NULL;
}
