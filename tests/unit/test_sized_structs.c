/* SPDX-License-Identifier: BSD-3-Clause */
/* The sized public structs (vhd.h "Sized structs", lib/sized.c, issue 14):
 * a caller's struct shorter than the library's gets the defaults for what
 * it lacks, one below the first layout is -EINVAL, a longer one is taken
 * only when its unknown bytes are zero, and the library never writes past
 * the size a caller gave for a struct it fills (a canary follows each). */
#include "scratch.h"

#include <criterion/criterion.h>

#include "io.h"
#include "sized.h"

#define MiB (1024ull * 1024)
#define CANARY 0xA5
#define ROOM 256   /* bytes of canary after a caller's struct */

static void setup(void) { scratch_make("sized"); }
static void teardown(void) { scratch_remove(); }
TestSuite(sized, .init = setup, .fini = teardown, .timeout = 60);

/* A caller's struct of `size` bytes with canary bytes after it. */
struct caller_buf {
  _Alignas(max_align_t) uint8_t bytes[512 + ROOM];
};

static void *canaried(struct caller_buf *b)
{
  memset(b->bytes, CANARY, sizeof b->bytes);
  return b->bytes;
}

static void assert_untouched(const struct caller_buf *b, size_t from, const char *what)
{
  for (size_t i = from; i < from + ROOM; i++)
    cr_assert_eq(b->bytes[i], CANARY, "%s: byte %zu past the caller's %zu was written", what,
                 i - from, from);
}

static vhd_image *memory_image(enum vhd_format fmt)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.size = 64 * MiB;
  vhd_io *io;
  vhd_image *img;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "sized", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  return img;
}

/* -EINVAL with a message naming the struct. */
static void assert_refused(int r, const char *what)
{
  cr_assert_eq(r, -EINVAL, "%s: %d", what, r);
  cr_assert(strstr(vhd_last_error(), what), "message '%s' does not name %s", vhd_last_error(),
            what);
}

/* --- The rule itself, on a struct that grew: v1 had a, v2 added b. ---- */

struct grown {
  size_t struct_size;
  int a;
  int b;   /* added later; default 7 */
};
#define GROWN_SIZE_1 SIZE_THROUGH(struct grown, a)

static int take_grown(const void *in, size_t size, struct grown *out)
{
  *out = (struct grown){ .struct_size = sizeof *out, .a = 1, .b = 7 };
  return sized_in("grown", out, sizeof *out, GROWN_SIZE_1, in, size);
}

Test(sized, an_older_struct_gets_the_defaults_it_lacks)
{
  struct caller_buf b;
  struct grown *old = canaried(&b), got;
  old->struct_size = GROWN_SIZE_1;
  old->a = 3;   /* b is canary: an old program's struct ends before it */
  cr_assert_eq(take_grown(old, GROWN_SIZE_1, &got), 0, "%s", vhd_last_error());
  cr_assert_eq(got.a, 3);
  cr_assert_eq(got.b, 7, "the member the caller lacks must get its default, not %d", got.b);
}

Test(sized, below_the_first_layout_is_refused)
{
  struct grown g = { 0 }, got;
  assert_refused(take_grown(&g, GROWN_SIZE_1 - 1, &got), "grown");
  assert_refused(take_grown(&g, 0, &got), "grown");
}

Test(sized, a_newer_struct_is_taken_when_its_new_bytes_are_zero)
{
  struct caller_buf b;
  uint8_t *newer = canaried(&b);
  memset(newer, 0, sizeof(struct grown) + 8);
  ((struct grown *)newer)->a = 5;
  struct grown got;
  cr_assert_eq(take_grown(newer, sizeof(struct grown) + 8, &got), 0, "%s", vhd_last_error());
  cr_assert_eq(got.a, 5);
  newer[sizeof(struct grown) + 3] = 1;   /* an option this library does not know */
  assert_refused(take_grown(newer, sizeof(struct grown) + 8, &got), "grown");
  assert_refused(take_grown(newer, (size_t)1 << 20, &got), "grown");   /* garbage */
}

/* --- Parameter structs ------------------------------------------------ */

Test(sized, init_writes_only_the_callers_size)
{
  struct caller_buf b;
  struct vhd_create_params *p = canaried(&b);
  cr_assert_eq(vhd_create_params_init_sized(p, CREATE_PARAMS_SIZE_1), 0, "%s",
               vhd_last_error());
  assert_untouched(&b, CREATE_PARAMS_SIZE_1, "vhd_create_params_init");
  cr_assert_eq(p->struct_size, CREATE_PARAMS_SIZE_1);
  cr_assert_eq(p->format, VHD_FORMAT_VHD);
  cr_assert_eq(p->type, VHD_TYPE_DYNAMIC);

  struct vhd_open_params *o = canaried(&b);
  cr_assert_eq(vhd_open_params_init_sized(o, OPEN_PARAMS_SIZE_1), 0, "%s", vhd_last_error());
  assert_untouched(&b, OPEN_PARAMS_SIZE_1, "vhd_open_params_init");
  cr_assert_eq(o->struct_size, OPEN_PARAMS_SIZE_1);
  cr_assert_null(o->parent_dir);
}

Test(sized, init_below_the_first_layout_is_refused_and_so_is_the_struct)
{
  struct vhd_create_params p;
  assert_refused(vhd_create_params_init_sized(&p, CREATE_PARAMS_SIZE_1 - 1),
                 "vhd_create_params");
  p.format = VHD_FORMAT_VHD;
  p.size = MiB;
  vhd_image *img = NULL;
  assert_refused(vhd_create(spath("small.vhd"), &p, &img), "vhd_create_params");
  cr_assert_null(img);
  struct vhd_open_params o;
  assert_refused(vhd_open_params_init_sized(&o, 4), "vhd_open_params");
}

/* A struct of the first layout's size, whatever lies past it, makes the
 * same image as one of the full size. */
Test(sized, first_layout_create_params_make_the_default_image)
{
  struct caller_buf b;
  struct vhd_create_params *p = canaried(&b);
  vhd_create_params_init_sized(p, CREATE_PARAMS_SIZE_1);
  p->format = VHD_FORMAT_VHDX;
  p->size = 64 * MiB;
  vhd_image *img;
  cr_assert_eq(vhd_create(spath("first.vhdx"), p, &img), 0, "%s", vhd_last_error());
  vhd_image *ref = memory_image(VHD_FORMAT_VHDX);
  struct vhd_info got, want;
  cr_assert_eq(vhd_get_info(img, &got), 0);
  cr_assert_eq(vhd_get_info(ref, &want), 0);
  cr_assert_eq(got.type, want.type);
  cr_assert_eq(got.virtual_size, want.virtual_size);
  cr_assert_eq(got.block_size, want.block_size);
  cr_assert_eq(got.logical_sector_size, want.logical_sector_size);
  cr_assert_eq(got.physical_sector_size, want.physical_sector_size);
  vhd_close(img);
  vhd_close(ref);

  struct vhd_open_params *o = canaried(&b);
  vhd_open_params_init_sized(o, OPEN_PARAMS_SIZE_1);
  cr_assert_eq(vhd_open_with(spath("first.vhdx"), o, &img), 0, "%s", vhd_last_error());
  vhd_close(img);
}

Test(sized, unknown_nonzero_parameter_bytes_are_refused)
{
  struct caller_buf b;
  uint8_t *bytes = canaried(&b);
  struct vhd_open_params *o = (void *)bytes;
  memset(bytes, 0, sizeof *o + 16);
  vhd_open_params_init_sized(o, sizeof *o + 16);
  vhd_image *img;
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.size = MiB;
  cr_assert_eq(vhd_create(spath("n.vhd"), &p, NULL), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_open_with(spath("n.vhd"), o, &img), 0, "zero tail: %s", vhd_last_error());
  vhd_close(img);
  bytes[sizeof *o + 5] = 1;
  assert_refused(vhd_open_with(spath("n.vhd"), o, &img), "vhd_open_params");
}

Test(sized, profile_apply_writes_only_the_callers_size)
{
  struct caller_buf b;
  struct vhd_create_params *p = canaried(&b);
  vhd_create_params_init_sized(p, CREATE_PARAMS_SIZE_1);
  cr_assert_eq(vhd_profile_apply(VHD_PROFILE_AZURE, 3 * MiB + 1, p), 0, "%s",
               vhd_last_error());
  assert_untouched(&b, CREATE_PARAMS_SIZE_1, "vhd_profile_apply");
  cr_assert_eq(p->struct_size, CREATE_PARAMS_SIZE_1);
  struct vhd_create_params full;
  vhd_create_params_init(&full);
  cr_assert_eq(vhd_profile_apply(VHD_PROFILE_AZURE, 3 * MiB + 1, &full), 0);
  cr_assert_eq(p->format, full.format);
  cr_assert_eq(p->type, full.type);
  cr_assert_eq(p->size, full.size);
  cr_assert_eq(p->block_size, full.block_size);
  cr_assert_eq(p->flags, full.flags);
  cr_assert_eq(p->type, VHD_TYPE_FIXED);
}

static int zero_pread(void *o, void *buf, size_t count, uint64_t offset)
{
  (void)o, (void)offset;
  memset(buf, 0, count);
  return 0;
}
static int empty_size(void *o, uint64_t *size)
{
  (void)o;
  *size = 0;
  return 0;
}
static void count_close(void *o) { ++*(int *)o; }

Test(sized, io_ops_sizes)
{
  static const struct vhd_io_ops minimal = {
    .pread = zero_pread, .get_size = empty_size, .close = count_close,
  };
  int closed = 0;
  vhd_io *io;
  assert_refused(vhd_io_new_sized(&minimal, IO_OPS_SIZE_1 - 1, &closed, "x", 0, &io),
                 "vhd_io_ops");
  cr_assert_null(io);
  /* A newer program's table: longer, its unknown members NULL. */
  struct caller_buf b;
  uint8_t *bytes = canaried(&b);
  memcpy(bytes, &minimal, sizeof minimal);
  memset(bytes + sizeof minimal, 0, 8);
  cr_assert_eq(vhd_io_new_sized((void *)bytes, sizeof minimal + 8, &closed, "newer", 0, &io), 0,
               "%s", vhd_last_error());
  cr_assert_eq(io->ops, &io->own_ops, "a table of another size is read from a copy");
  cr_assert_eq(io->ops->pread, zero_pread);
  cr_assert_null(io->ops->pwrite);
  vhd_io_close(io);
  cr_assert_eq(closed, 1);
  /* ... with one of them set, which this library cannot honour. */
  bytes[sizeof minimal + 1] = 1;
  assert_refused(vhd_io_new_sized((void *)bytes, sizeof minimal + 8, &closed, "newer", 0, &io),
                 "vhd_io_ops");
  cr_assert_eq(closed, 1, "a refused backend is not closed: the caller still owns it");
}

/* --- Structs the library fills ---------------------------------------- */

/* Each output call, through its sized entry point, with the struct's first
 * layout size; the canary after it must survive, and sizes outside the
 * rule are -EINVAL with nothing written. */
typedef int (*fill_fn)(vhd_image *img, void *out, size_t size);

static int fill_info(vhd_image *img, void *out, size_t size)
{
  return vhd_get_info_sized(img, out, size);
}
static int fill_layout(vhd_image *img, void *out, size_t size)
{
  return vhd_get_layout_sized(img, out, size);
}
static int fill_compact(vhd_image *img, void *out, size_t size)
{
  return vhd_compact_sized(img, 0, NULL, NULL, out, size);
}
static int fill_compare(vhd_image *img, void *out, size_t size)
{
  return vhd_compare_sized(img, img, 0, NULL, NULL, out, size);
}
static int fill_measure(vhd_image *img, void *out, size_t size)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  return vhd_measure_sized(img, &p, out, size);
}
static int fill_check(vhd_image *img, void *out, size_t size)
{
  (void)img;
  return vhd_check_sized(spath("c.vhd"), 0, NULL, NULL, out, size);
}
static int fill_check_io(vhd_image *img, void *out, size_t size)
{
  (void)img;
  vhd_io *io;
  cr_assert_eq(vhd_io_open_file(spath("c.vhd"), VHD_IO_RDONLY, &io), 0);
  int r = vhd_check_io_sized(io, 0, NULL, NULL, out, size);
  vhd_io_close(io);
  return r;
}
/* c.vhd opened with flags, for the calls that need an image of their own. */
static vhd_image *open_c(unsigned flags)
{
  vhd_image *file;
  cr_assert_eq(vhd_open(spath("c.vhd"), flags, &file), 0, "%s", vhd_last_error());
  return file;
}
static int fill_boot_prepare(vhd_image *img, void *out, size_t size)
{
  vhd_image *file = open_c(VHD_OPEN_RDWR);
  int r = vhd_boot_prepare_sized(file, MiB, NULL, NULL, out, size);
  vhd_close(file);
  (void)img;
  return r;
}
static int fill_reserve(vhd_image *img, void *out, size_t size)
{
  vhd_image *file = open_c(VHD_OPEN_RDONLY);
  int r = vhd_get_reserve_sized(file, out, size);
  vhd_close(file);
  (void)img;
  return r;
}

static void assert_fills_within(const char *what, fill_fn fill, size_t first, size_t full,
                                vhd_image *img)
{
  struct caller_buf b;
  cr_assert_eq(fill(img, canaried(&b), first), 0, "%s: %s", what, vhd_last_error());
  assert_untouched(&b, first, what);
  canaried(&b);
  assert_refused(fill(img, b.bytes, first - 1), what);
  assert_untouched(&b, 0, what);
  assert_refused(fill(img, b.bytes, full + 1), what);
  assert_untouched(&b, 0, what);
}

Test(sized, the_library_writes_no_byte_past_the_callers_size)
{
  vhd_image *img = memory_image(VHD_FORMAT_VHD);
  char block[4096];
  memset(block, 0x42, sizeof block);
  cr_assert_eq(vhd_pwrite(img, block, sizeof block, MiB), 0);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.size = 8 * MiB;
  cr_assert_eq(vhd_create(spath("c.vhd"), &p, NULL), 0, "%s", vhd_last_error());
  assert_fills_within("vhd_info", fill_info, INFO_SIZE_1, sizeof(struct vhd_info), img);
  assert_fills_within("vhd_layout", fill_layout, LAYOUT_SIZE_1, sizeof(struct vhd_layout), img);
  assert_fills_within("vhd_compact_result", fill_compact, COMPACT_RESULT_SIZE_1,
                      sizeof(struct vhd_compact_result), img);
  assert_fills_within("vhd_compare_result", fill_compare, COMPARE_RESULT_SIZE_1,
                      sizeof(struct vhd_compare_result), img);
  assert_fills_within("vhd_measure_result", fill_measure, MEASURE_RESULT_SIZE_1,
                      sizeof(struct vhd_measure_result), img);
  assert_fills_within("vhd_check_result", fill_check, CHECK_RESULT_SIZE_1,
                      sizeof(struct vhd_check_result), img);
  assert_fills_within("vhd_check_result", fill_check_io, CHECK_RESULT_SIZE_1,
                      sizeof(struct vhd_check_result), img);
  assert_fills_within("vhd_boot_prepare_result", fill_boot_prepare, BOOT_PREPARE_RESULT_SIZE_1,
                      sizeof(struct vhd_boot_prepare_result), img);
  /* boot-prepare gave c.vhd a reserve */
  assert_fills_within("vhd_reserve", fill_reserve, RESERVE_SIZE_1, sizeof(struct vhd_reserve),
                      img);
  vhd_close(img);
}

/* What a first-layout struct holds is what a full one holds. */
Test(sized, a_first_layout_result_holds_the_same_values)
{
  vhd_image *img = memory_image(VHD_FORMAT_VHDX);
  struct caller_buf b;
  struct vhd_info *small = canaried(&b), full;
  cr_assert_eq(vhd_get_info_sized(img, small, INFO_SIZE_1), 0);
  cr_assert_eq(vhd_get_info(img, &full), 0);
  cr_assert_eq(memcmp(small, &full, INFO_SIZE_1), 0);
  vhd_close(img);
}

static int count_extent(void *opaque, const struct vhd_extent *e)
{
  (void)e;
  ++*(int *)opaque;
  return 0;
}

Test(sized, map_extent_sizes)
{
  vhd_image *img = memory_image(VHD_FORMAT_VHD);
  int n = 0;
  cr_assert_eq(vhd_map_sized(img, 0, 0, count_extent, &n, EXTENT_SIZE_1), 0, "%s",
               vhd_last_error());
  cr_assert_gt(n, 0);
  assert_refused(vhd_map_sized(img, 0, 0, count_extent, &n, EXTENT_SIZE_1 - 1), "vhd_extent");
  assert_refused(vhd_map_sized(img, 0, 0, count_extent, &n, sizeof(struct vhd_extent) + 1),
                 "vhd_extent");
  vhd_close(img);
}

/* --- Convert's flags are its own -------------------------------------- */

Test(sized, convert_flags_are_not_create_flags)
{
  vhd_image *src = memory_image(VHD_FORMAT_VHD);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_RAW;
  cr_assert_eq(vhd_convert(src, spath("out.raw"), &p, VHD_CONVERT_SYNC, NULL, NULL), 0, "%s",
               vhd_last_error());
  cr_assert_eq(vhd_convert(src, spath("bad.raw"), &p, 0x100, NULL, NULL), -EINVAL);
  cr_assert(strstr(vhd_last_error(), "convert flags"), "%s", vhd_last_error());
  /* 0x100 was VHD_CREATE_SYNC: create no longer takes it silently */
  p.flags = 0x100;
  p.size = MiB;
  cr_assert_eq(vhd_create(spath("c.raw"), &p, NULL), -EINVAL);
  cr_assert(strstr(vhd_last_error(), "create flags"), "%s", vhd_last_error());
  vhd_close(src);
}
