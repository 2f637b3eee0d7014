/* SPDX-License-Identifier: BSD-3-Clause */
/* The size rules of the public structs (vhd.h, "Sized structs"), in one
 * place: the first libvhd.so.1 layout of each struct, and the checks and
 * copies every sized entry point makes. The bodies behind the sized
 * entry points work on full-size structs of this library's own layout. */
#ifndef LIBVHD_SIZED_H
#define LIBVHD_SIZED_H

#include <stddef.h>

#include "vhd.h"

/* Bytes of type up to and including member. */
#define SIZE_THROUGH(type, member) \
  (offsetof(type, member) + sizeof(((type *)0)->member))

/* The first layouts: a member added later goes after these, and these
 * lines never change. It starts at or past the previous layout's sizeof
 * (explicit padding first where needed: vhd_create_params, vhd_reserve,
 * vhd_extent and vhd_layout end in padding), since an old program passes
 * its sizeof and its padding bytes may be anything after a struct copy. */
#define IO_OPS_SIZE_1          SIZE_THROUGH(struct vhd_io_ops, close)
#define OPEN_PARAMS_SIZE_1     SIZE_THROUGH(struct vhd_open_params, parent_dir)
#define CREATE_PARAMS_SIZE_1   SIZE_THROUGH(struct vhd_create_params, flags)
#define INFO_SIZE_1            SIZE_THROUGH(struct vhd_info, free_slot_bytes)
#define RESERVE_SIZE_1         SIZE_THROUGH(struct vhd_reserve, trailer_bytes)
#define CHECK_RESULT_SIZE_1    SIZE_THROUGH(struct vhd_check_result, repairs)
#define COMPACT_RESULT_SIZE_1  SIZE_THROUGH(struct vhd_compact_result, host_bytes_after)
#define BOOT_PREPARE_RESULT_SIZE_1 SIZE_THROUGH(struct vhd_boot_prepare_result, bytes_written)
#define EXTENT_SIZE_1          SIZE_THROUGH(struct vhd_extent, depth)
#define COMPARE_RESULT_SIZE_1  SIZE_THROUGH(struct vhd_compare_result, offset)
#define MEASURE_RESULT_SIZE_1  SIZE_THROUGH(struct vhd_measure_result, fully_allocated)
#define LAYOUT_SIZE_1          SIZE_THROUGH(struct vhd_layout, fragmentation_pct)

/* A struct the caller fills, of in_size bytes, into full (full_size
 * bytes, holding the defaults): the caller's bytes replace the defaults
 * they cover. -EINVAL (naming what) when in_size is below first_size, or
 * above full_size with a byte this library does not know that is not
 * zero. */
int sized_in(const char *what, void *full, size_t full_size, size_t first_size,
             const void *in, size_t in_size);

/* Before a call fills a caller's struct out (NULL allowed) of out_size
 * bytes: -EINVAL (naming what) unless first_size <= out_size <= full_size;
 * else full (full_size bytes) starts as the caller's struct, zeros past
 * it, so members the call leaves alone come back unchanged. */
int sized_out_begin(const char *what, void *full, size_t full_size, size_t first_size,
                    const void *out, size_t out_size);
/* After the call: out_size bytes of full go back to out (if not NULL). */
void sized_out_end(void *out, const void *full, size_t out_size);

/* The body of a sized entry point whose one output struct (type T, first
 * layout FIRST) is out, of size out_size: CALL runs with `full` in its
 * place, NULL when out is. */
#define WITH_SIZED_OUT(T, FIRST, out, out_size, CALL)                          \
  do {                                                                         \
    struct T full_;                                                            \
    int r_ = sized_out_begin(#T, &full_, sizeof full_, FIRST, out, out_size);  \
    if (r_ < 0)                                                                \
      return r_;                                                               \
    struct T *full = (out) ? &full_ : NULL;                                    \
    r_ = (CALL);                                                               \
    sized_out_end(out, &full_, out_size);                                      \
    return r_;                                                                 \
  } while (0)

/* The caller's parameters as a full struct of this library, defaults
 * where the caller's struct is shorter; struct_size is then the full
 * size. */
int open_params_take(const struct vhd_open_params *in, struct vhd_open_params *p);
int create_params_take(const struct vhd_create_params *in, struct vhd_create_params *p);

/* The bodies of the sized entry points, on full-size structs. */
int image_get_info(vhd_image *img, struct vhd_info *info);
int image_get_reserve(vhd_image *img, struct vhd_reserve *out);
int check_on_path(const char *path, const struct vhd_open_params *p, unsigned flags,
                  vhd_check_report_fn report, void *opaque, struct vhd_check_result *result);
int check_on_io(vhd_io *io, unsigned flags, vhd_check_report_fn report, void *opaque,
                struct vhd_check_result *result);
int compact_image(vhd_image *img, unsigned flags, vhd_progress_fn progress, void *opaque,
                  struct vhd_compact_result *result);
int boot_prepare_image(vhd_image *img, uint64_t reserve_bytes, vhd_progress_fn progress,
                       void *opaque, struct vhd_boot_prepare_result *result);
int map_image(vhd_image *img, uint64_t offset, uint64_t length, vhd_extent_fn fn,
              void *opaque);
int compare_images(vhd_image *a, vhd_image *b, unsigned flags, vhd_progress_fn progress,
                   void *opaque, struct vhd_compare_result *result);
int measure_image(vhd_image *src, const struct vhd_create_params *p,
                  struct vhd_measure_result *result);
int image_get_layout(vhd_image *img, struct vhd_layout *layout);
int profile_apply(enum vhd_profile profile, uint64_t src_size, struct vhd_create_params *p);

#endif
