/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_map and the profiles through the public API, in memory: extents
 * against the writes the test made (the model), each host offset checked
 * against the bytes of the image file; profile names, vhd_profile_apply's
 * sizes and refusals, and vhd_profile_check's rule names. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhd.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
#define DISK (8 * MiB)
#define BLOCK (512 * KiB)

struct collected {
  struct vhd_extent e[256];
  unsigned n;
};

static int collect(void *opaque, const struct vhd_extent *e)
{
  struct collected *c = opaque;
  cr_assert_lt(c->n, 256);
  c->e[c->n++] = *e;
  return 0;
}

static int stop_at_second(void *opaque, const struct vhd_extent *e)
{
  (void)e;
  return ++*(int *)opaque == 2 ? 1 : 0;
}

/* A new image in memory; its file's io in *io_out when that is non-NULL. */
static vhd_image *memory_image(enum vhd_format fmt, enum vhd_disk_type type, uint64_t size,
                               uint32_t block, vhd_io **io_out)
{
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "mem", VHD_IO_RDWR, &io), 0);
  if (io_out)
    *io_out = io;
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = type;
  p.size = size;
  p.block_size = block;
  vhd_image *img;
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  return img;
}

static void fill(uint8_t *buf, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++)
    buf[i] = (uint8_t)(seed * 131 + i * 7 + 1) | 1;   /* never zero */
}

Test(map, dynamic_vhd_extents_follow_the_writes)
{
  vhd_image *img = memory_image(VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC, DISK, BLOCK, NULL);
  static uint8_t model[DISK];
  static uint8_t buf[2 * BLOCK];
  const struct { uint64_t off, len; } w[] = {
    { 0, BLOCK }, { 3 * BLOCK, 2 * BLOCK }, { 9 * BLOCK + 8192, 4096 },
  };
  for (unsigned i = 0; i < 3; i++) {
    fill(buf, w[i].len, i);
    cr_assert_eq(vhd_pwrite(img, buf, w[i].len, w[i].off), 0);
    memcpy(model + w[i].off, buf, w[i].len);
  }
  struct collected c = {0};
  cr_assert_eq(vhd_map(img, 0, 0, collect, &c), 0, "%s", vhd_last_error());

  /* The memory backend has no holes: allocated blocks are data, the rest
   * zeros of the base; the extents tile the disk. */
  uint64_t pos = 0;
  for (unsigned i = 0; i < c.n; i++) {
    const struct vhd_extent *e = &c.e[i];
    cr_assert_eq(e->offset, pos);
    pos += e->length;
    cr_assert_eq(e->depth, 0u);
    cr_assert_eq(e->layer, 0);
    uint64_t blk = e->offset / BLOCK;
    bool allocated = blk == 0 || blk == 3 || blk == 4 || blk == 9;
    cr_assert_eq((e->status & VHD_STATUS_DATA) != 0, allocated, "extent at %llu",
                 (unsigned long long)e->offset);
    cr_assert_eq(e->host_offset != UINT64_MAX, allocated);
    if (!allocated)
      cr_assert_eq(e->status, VHD_STATUS_ZERO);
    /* Blocks 3 and 4 have a bitmap between them: never one extent. */
    cr_assert_leq(e->length, allocated ? BLOCK : DISK);
  }
  cr_assert_eq(pos, DISK);
  /* The model agrees with what the image reads. */
  static uint8_t back[DISK];
  cr_assert_eq(vhd_pread(img, back, DISK, 0), 0);
  cr_assert_eq(memcmp(back, model, DISK), 0);
  vhd_close(img);
}

Test(map, host_offsets_point_at_the_data)
{
  vhd_io *io;
  vhd_image *img = memory_image(VHD_FORMAT_VHDX, VHD_TYPE_DYNAMIC, DISK, MiB, &io);
  static uint8_t buf[MiB];
  fill(buf, MiB, 5);
  cr_assert_eq(vhd_pwrite(img, buf, MiB, 2 * MiB), 0);
  cr_assert_eq(vhd_pwrite(img, buf, 4096, 6 * MiB + 4096), 0);
  cr_assert_eq(vhd_flush(img), 0);

  struct collected c = {0};
  cr_assert_eq(vhd_map(img, 0, 0, collect, &c), 0, "%s", vhd_last_error());
  void *file;
  size_t file_size;
  cr_assert_eq(vhd_io_memory_contents(io, &file, &file_size), 0);
  unsigned data = 0;
  for (unsigned i = 0; i < c.n; i++) {
    const struct vhd_extent *e = &c.e[i];
    if (!(e->status & VHD_STATUS_DATA))
      continue;
    data++;
    cr_assert_neq(e->host_offset, UINT64_MAX);
    cr_assert_leq(e->host_offset + e->length, file_size);
    static uint8_t want[MiB];
    cr_assert_eq(vhd_pread(img, want, e->length, e->offset), 0);
    cr_assert_eq(memcmp((uint8_t *)file + e->host_offset, want, e->length), 0,
                 "extent at %llu", (unsigned long long)e->offset);
  }
  cr_assert_eq(data, 2u, "one extent per written block");
  free(file);

  /* A part of the disk, and a callback that stops the map. */
  c.n = 0;
  cr_assert_eq(vhd_map(img, 2 * MiB + 512, 4096, collect, &c), 0);
  cr_assert_eq(c.n, 1u);
  cr_assert_eq(c.e[0].offset, 2 * MiB + 512);
  cr_assert_eq(c.e[0].length, 4096u);
  int calls = 0;
  cr_assert_eq(vhd_map(img, 0, 0, stop_at_second, &calls), -ECANCELED);
  cr_assert_eq(vhd_map(img, DISK, 1, collect, &c), -EINVAL);
  vhd_close(img);
}

/* --- profiles ------------------------------------------------------------ */

Test(profile, names)
{
  enum vhd_profile p;
  const char *names[] = { "azure", "hyperv", "virtualpc" };
  for (unsigned i = 0; i < 3; i++) {
    cr_assert_eq(vhd_profile_from_name(names[i], &p), 0);
    cr_assert_str_eq(vhd_profile_name(p), names[i]);
  }
  cr_assert_eq(vhd_profile_from_name("aws", &p), -EINVAL);
  cr_assert_not_null(strstr(vhd_last_error(), "aws"));
  cr_assert_null(vhd_profile_name((enum vhd_profile)99));
}

Test(profile, apply)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  cr_assert_eq(vhd_profile_apply(VHD_PROFILE_AZURE, 100 * MiB + 1, &p), 0);
  cr_assert_eq(p.format, VHD_FORMAT_VHD);
  cr_assert_eq(p.type, VHD_TYPE_FIXED);
  cr_assert_eq(p.size, 101ull * MiB);
  vhd_create_params_init(&p);
  cr_assert_eq(vhd_profile_apply(VHD_PROFILE_AZURE, 1000, &p), 0);
  cr_assert_eq(p.size, 20ull * MiB, "Azure's minimum");
  vhd_create_params_init(&p);
  cr_assert_eq(vhd_profile_apply(VHD_PROFILE_AZURE, 33ull << 40, &p), -EFBIG);

  vhd_create_params_init(&p);
  cr_assert_eq(vhd_profile_apply(VHD_PROFILE_VIRTUALPC, 10 * MiB, &p), 0);
  cr_assert(p.flags & VHD_CREATE_CHS_ROUND);
  vhd_create_params_init(&p);
  cr_assert_eq(vhd_profile_apply(VHD_PROFILE_VIRTUALPC, 200ull << 30, &p), -EFBIG);

  vhd_create_params_init(&p);   /* VHD dynamic: 2 MiB blocks, data aligned */
  p.format = VHD_FORMAT_VHD;
  p.type = VHD_TYPE_DYNAMIC;
  cr_assert_eq(vhd_profile_apply(VHD_PROFILE_HYPERV, 10 * MiB, &p), 0);
  cr_assert_eq(p.block_size, 2 * MiB);
  p.format = VHD_FORMAT_VHDX;
  p.block_size = 3 * MiB;
  cr_assert_eq(vhd_profile_apply(VHD_PROFILE_HYPERV, 10 * MiB, &p), -EINVAL);
  p.block_size = 8 * MiB;
  cr_assert_eq(vhd_profile_apply(VHD_PROFILE_HYPERV, 10 * MiB, &p), 0);
}

struct names {
  char text[2048];
  unsigned n;
};

static void on_rule(void *opaque, enum vhd_check_severity sev, const char *msg)
{
  struct names *r = opaque;
  cr_assert_eq(sev, VHD_CHECK_CORRUPTION);
  strncat(r->text, msg, sizeof r->text - strlen(r->text) - 2);
  strcat(r->text, "\n");
  r->n++;
}

Test(profile, rules_by_name)
{
  /* A 1000000-byte fixed VHD (rounded to 1000448 by the sector size). */
  vhd_image *img = memory_image(VHD_FORMAT_VHD, VHD_TYPE_FIXED, 1000000, 0, NULL);
  struct names r = {0};
  unsigned v = 99;
  cr_assert_eq(vhd_profile_check(img, VHD_PROFILE_AZURE, on_rule, &r, &v), 0);
  cr_assert_eq(v, r.n);
  cr_assert_eq(v, 2u, "%s", r.text);
  cr_assert_not_null(strstr(r.text, "azure.size-whole-mib: virtual size 1000448 bytes"));
  cr_assert_not_null(strstr(r.text, "azure.size-limits:"));
  vhd_close(img);

  img = memory_image(VHD_FORMAT_VHDX, VHD_TYPE_DYNAMIC, 32 * MiB, 0, NULL);
  memset(&r, 0, sizeof r);
  cr_assert_eq(vhd_profile_check(img, VHD_PROFILE_AZURE, on_rule, &r, &v), 0);
  cr_assert_not_null(strstr(r.text, "azure.format-vhd:"));
  cr_assert_not_null(strstr(r.text, "azure.type-fixed:"));
  memset(&r, 0, sizeof r);
  cr_assert_eq(vhd_profile_check(img, VHD_PROFILE_HYPERV, on_rule, &r, &v), 0);
  cr_assert_eq(v, 0u, "%s", r.text);
  memset(&r, 0, sizeof r);
  cr_assert_eq(vhd_profile_check(img, VHD_PROFILE_VIRTUALPC, on_rule, &r, &v), 0);
  cr_assert_not_null(strstr(r.text, "virtualpc.format-vhd:"));
  vhd_close(img);

  img = memory_image(VHD_FORMAT_VHD, VHD_TYPE_FIXED, 32 * MiB, 0, NULL);
  memset(&r, 0, sizeof r);
  cr_assert_eq(vhd_profile_check(img, VHD_PROFILE_AZURE, NULL, NULL, &v), 0);
  cr_assert_eq(v, 0u);
  cr_assert_eq(vhd_profile_check(img, (enum vhd_profile)7, NULL, NULL, &v), -EINVAL);
  vhd_close(img);
}
