/* SPDX-License-Identifier: BSD-3-Clause */
/* The sized entry points of the operations (vhd.h, "Sized structs";
 * the rules are sized.c's): each takes the caller's structs into
 * full-size ones of this library, runs the operation on those, and gives
 * back no more than the caller's sizes. */
#include "error.h"
#include "image.h"
#include "sized.h"

int vhd_check_with_sized(const char *path, const struct vhd_open_params *p, unsigned flags,
                         vhd_check_report_fn report, void *opaque,
                         struct vhd_check_result *result, size_t result_size)
{
  struct vhd_open_params params;
  int r = open_params_take(p, &params);
  if (r < 0)
    return r;
  WITH_SIZED_OUT(vhd_check_result, CHECK_RESULT_SIZE_1, result, result_size,
                 check_on_path(path, &params, flags, report, opaque, full));
}

int vhd_check_sized(const char *path, unsigned flags, vhd_check_report_fn report,
                    void *opaque, struct vhd_check_result *result, size_t result_size)
{
  struct vhd_open_params p;
  vhd_open_params_init(&p);
  return vhd_check_with_sized(path, &p, flags, report, opaque, result, result_size);
}

int vhd_check_io_sized(vhd_io *io, unsigned flags, vhd_check_report_fn report,
                       void *opaque, struct vhd_check_result *result, size_t result_size)
{
  WITH_SIZED_OUT(vhd_check_result, CHECK_RESULT_SIZE_1, result, result_size,
                 check_on_io(io, flags, report, opaque, full));
}

int vhd_compact_sized(vhd_image *img, unsigned flags, vhd_progress_fn progress,
                      void *opaque, struct vhd_compact_result *result, size_t result_size)
{
  WITH_SIZED_OUT(vhd_compact_result, COMPACT_RESULT_SIZE_1, result, result_size,
                 compact_image(img, flags, progress, opaque, full));
}

int vhd_boot_prepare_sized(vhd_image *img, uint64_t reserve_bytes,
                           vhd_progress_fn progress, void *opaque,
                           struct vhd_boot_prepare_result *result, size_t result_size)
{
  WITH_SIZED_OUT(vhd_boot_prepare_result, BOOT_PREPARE_RESULT_SIZE_1, result, result_size,
                 boot_prepare_image(img, reserve_bytes, progress, opaque, full));
}

int vhd_compare_sized(vhd_image *a, vhd_image *b, unsigned flags, vhd_progress_fn progress,
                      void *opaque, struct vhd_compare_result *result, size_t result_size)
{
  WITH_SIZED_OUT(vhd_compare_result, COMPARE_RESULT_SIZE_1, result, result_size,
                 compare_images(a, b, flags, progress, opaque, full));
}

int vhd_measure_sized(vhd_image *src, const struct vhd_create_params *p,
                      struct vhd_measure_result *result, size_t result_size)
{
  struct vhd_create_params params;
  int r = create_params_take(p, &params);
  if (r < 0)
    return r;
  WITH_SIZED_OUT(vhd_measure_result, MEASURE_RESULT_SIZE_1, result, result_size,
                 measure_image(src, &params, full));
}

int vhd_get_layout_sized(vhd_image *img, struct vhd_layout *layout, size_t layout_size)
{
  WITH_SIZED_OUT(vhd_layout, LAYOUT_SIZE_1, layout, layout_size,
                 image_get_layout(img, full));
}

/* The extents are the library's own: the caller's size only says how much
 * of one it reads, which must not be more than this library fills. */
int vhd_map_sized(vhd_image *img, uint64_t offset, uint64_t length, vhd_extent_fn fn,
                  void *opaque, size_t extent_size)
{
  struct vhd_extent ignored;
  int r = sized_out_begin("vhd_extent", &ignored, sizeof ignored, EXTENT_SIZE_1, NULL,
                          extent_size);
  return r < 0 ? r : map_image(img, offset, length, fn, opaque);
}

/* p is in and out: the profile's changes go back only as far as the
 * caller's struct reaches. */
int vhd_profile_apply(enum vhd_profile profile, uint64_t src_size,
                      struct vhd_create_params *p)
{
  struct vhd_create_params full;
  int r = create_params_take(p, &full);
  if (r < 0)
    return r;
  r = profile_apply(profile, src_size, &full);
  size_t size = p->struct_size;
  memcpy(p, &full, size < sizeof full ? size : sizeof full);
  p->struct_size = size;
  return r;
}
