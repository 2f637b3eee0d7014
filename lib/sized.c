/* SPDX-License-Identifier: BSD-3-Clause */
/* The sized public structs (vhd.h, "Sized structs"): the size checks,
 * the parameter structs' init functions, and the sized entry points of
 * the core (the hosted operations' are in ops/sized_ops.c). */
#include "error.h"
#include "io.h"
#include "sized.h"

/* More than any struct of this library will ever be: a struct_size past
 * it is garbage (a struct its init function never saw), refused before a
 * byte past the caller's struct is read. */
#define SIZED_MAX 4096

static int size_error(const char *what, size_t size, size_t first_size)
{
  if (size < first_size)
    return vhd_error(EINVAL, "%s: size %zu is below the first layout (%zu bytes); "
                     "vhd.h's init functions and call macros pass the right one",
                     what, size, first_size);
  return vhd_error(EINVAL, "%s: size %zu is not the size of a %s (at most %d bytes)",
                   what, size, what, SIZED_MAX);
}

int sized_in(const char *what, void *full, size_t full_size, size_t first_size,
             const void *in, size_t in_size)
{
  if (in_size < first_size || in_size > SIZED_MAX)
    return size_error(what, in_size, first_size);
  const uint8_t *bytes = in;
  for (size_t i = full_size; i < in_size; i++)
    if (bytes[i])
      return vhd_error(EINVAL, "%s: byte %zu of %zu is set, and this libvhd knows only "
                       "the first %zu (an option of a newer libvhd)", what, i, in_size,
                       full_size);
  memcpy(full, in, in_size < full_size ? in_size : full_size);
  return 0;
}

int sized_out_begin(const char *what, void *full, size_t full_size, size_t first_size,
                    const void *out, size_t out_size)
{
  if (out_size < first_size)
    return size_error(what, out_size, first_size);
  if (out_size > full_size)
    return vhd_error(EINVAL, "%s: size %zu is larger than this libvhd's %zu bytes "
                     "(a program built for a newer libvhd)", what, out_size, full_size);
  memset(full, 0, full_size);
  if (out)
    memcpy(full, out, out_size);
  return 0;
}

void sized_out_end(void *out, const void *full, size_t out_size)
{
  if (out)
    memcpy(out, full, out_size);
}

/* The defaults of a parameter struct go into the caller's size (its
 * newer bytes, if any, zero: no newer option); a size below the first
 * layout is still recorded where it fits, so the call that takes the
 * struct refuses it by the same rule. */
static int init_sized(const char *what, void *p, const void *defaults, size_t full_size,
                      size_t first_size, size_t size)
{
  if (size >= sizeof(size_t))
    memcpy(p, &size, sizeof size);   /* struct_size, the first member */
  if (size < first_size || size > SIZED_MAX)
    return size_error(what, size, first_size);
  memset(p, 0, size);
  memcpy(p, defaults, size < full_size ? size : full_size);
  memcpy(p, &size, sizeof size);
  return 0;
}

static void open_params_defaults(struct vhd_open_params *p)
{
  memset(p, 0, sizeof *p);
  p->struct_size = sizeof *p;
}

static void create_params_defaults(struct vhd_create_params *p)
{
  memset(p, 0, sizeof *p);
  p->struct_size = sizeof *p;
  p->format = VHD_FORMAT_VHD;
  p->type = VHD_TYPE_DYNAMIC;
}

int vhd_open_params_init_sized(struct vhd_open_params *p, size_t size)
{
  struct vhd_open_params d;
  open_params_defaults(&d);
  return init_sized("vhd_open_params", p, &d, sizeof d, OPEN_PARAMS_SIZE_1, size);
}

int vhd_create_params_init_sized(struct vhd_create_params *p, size_t size)
{
  struct vhd_create_params d;
  create_params_defaults(&d);
  return init_sized("vhd_create_params", p, &d, sizeof d, CREATE_PARAMS_SIZE_1, size);
}

int open_params_take(const struct vhd_open_params *in, struct vhd_open_params *p)
{
  open_params_defaults(p);
  int r = sized_in("vhd_open_params", p, sizeof *p, OPEN_PARAMS_SIZE_1, in, in->struct_size);
  p->struct_size = sizeof *p;
  return r;
}

int create_params_take(const struct vhd_create_params *in, struct vhd_create_params *p)
{
  create_params_defaults(p);
  int r = sized_in("vhd_create_params", p, sizeof *p, CREATE_PARAMS_SIZE_1, in,
                   in->struct_size);
  p->struct_size = sizeof *p;
  return r;
}

int vhd_get_info_sized(vhd_image *img, struct vhd_info *info, size_t info_size)
{
  WITH_SIZED_OUT(vhd_info, INFO_SIZE_1, info, info_size, image_get_info(img, full));
}

int vhd_get_reserve_sized(vhd_image *img, struct vhd_reserve *out, size_t out_size)
{
  WITH_SIZED_OUT(vhd_reserve, RESERVE_SIZE_1, out, out_size, image_get_reserve(img, full));
}
