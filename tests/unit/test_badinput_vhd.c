/* SPDX-License-Identifier: BSD-3-Clause */
/* Bad-input catalogue for VHD: images made by the library, then damaged one
 * field at a time the way real files go wrong (truncation, bad checksums,
 * BAT entries pointing where they must not, absurd sizes, broken parent
 * chains). Each must fail to open with a negative errno and a one-line
 * message naming the file, never crash (run this under -DVHD_SANITIZE=ON),
 * and never be changed by the failed open.
 *
 * The layout is read here straight from the specification, and checksums are
 * recomputed by our own routine, so a damaged field can be made to pass the
 * earlier checks and reach the one under test. */
#include "badinput.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

/* The reference image: dynamic, 4 MiB, 1 MiB blocks, blocks 0 and 2 written
 * (so the BAT has used and unused entries). */
#define DISK_SIZE (4 * MiB)
#define BLOCK_SIZE MiB

static void setup(void) { scratch_init(); }
static void teardown(void) { scratch_fini(); }

/* VHD checksum: one's complement of the byte sum, checksum field as zero. */
static uint32_t vhd_checksum(const uint8_t *p, size_t len, size_t csum_off)
{
  uint32_t sum = 0;
  for (size_t i = 0; i < len; i++)
    if (i < csum_off || i >= csum_off + 4)
      sum += p[i];
  return ~sum;
}

/* Where the structures of a dynamic/differencing VHD are. */
struct layout {
  size_t footer;        /* EOF footer */
  size_t header;        /* dynamic header */
  size_t table;         /* BAT */
  uint32_t entries;
  uint32_t block_size;
};

static struct layout parse(struct bytes b)
{
  struct layout l;
  cr_assert_geq(b.len, 2048u);
  l.footer = b.len - 512;
  cr_assert_eq(memcmp(b.p + l.footer, "conectix", 8), 0, "made image has no footer");
  uint64_t data_offset = be64(b.p + l.footer + 16);
  cr_assert_lt(data_offset, b.len);
  l.header = (size_t)data_offset;
  cr_assert_eq(memcmp(b.p + l.header, "cxsparse", 8), 0, "made image has no dynamic header");
  l.table = (size_t)be64(b.p + l.header + 16);
  l.entries = be32(b.p + l.header + 28);
  l.block_size = be32(b.p + l.header + 32);
  cr_assert_lt(l.table, b.len);
  return l;
}

static void fix_footer_at(struct bytes b, size_t off)
{
  put_be32(b.p + off + 64, vhd_checksum(b.p + off, 512, 64));
}

/* Recompute both footer checksums (EOF and the copy at 0 when present). */
static void fix_footers(struct bytes b)
{
  fix_footer_at(b, b.len - 512);
  if (memcmp(b.p, "conectix", 8) == 0)
    fix_footer_at(b, 0);
}

static void fix_header(struct bytes b, struct layout l)
{
  put_be32(b.p + l.header + 36, vhd_checksum(b.p + l.header, 1024, 36));
}

static uint32_t bat(struct bytes b, struct layout l, unsigned i)
{
  return be32(b.p + l.table + 4 * i);
}

static void set_bat(struct bytes b, struct layout l, unsigned i, uint32_t v)
{
  put_be32(b.p + l.table + 4 * i, v);
}

static void create_image(const char *path, enum vhd_disk_type type, uint64_t size,
                         uint32_t block_size, const char *parent)
{
  struct vhd_create_params p = dynamic_params(VHD_FORMAT_VHD, size, block_size);
  p.type = type;
  p.parent = parent;
  vhd_image *img = NULL;
  cr_assert_eq(vhd_create(path, &p, &img), 0, "create %s: %s", path, vhd_last_error());
  /* Data in blocks 0 and 2; blocks 1 and 3 stay unallocated. */
  uint8_t buf[4096];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t)(i * 7 + 1);
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 0), 0, "%s", vhd_last_error());
  if (size >= 2 * MiB + 512 + sizeof buf)
    cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 2 * MiB + 512), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
}

/* The reference dynamic image's bytes (checked to open first). */
static struct bytes reference_dynamic(void)
{
  static unsigned n;
  char name[32];
  snprintf(name, sizeof name, "ref-%u.vhd", n++);
  const char *path = spath(name);
  create_image(path, VHD_TYPE_DYNAMIC, DISK_SIZE, BLOCK_SIZE, NULL);
  expect_opens(path, 0);
  struct bytes b = slurp(path);
  struct layout l = parse(b);
  cr_assert_eq(l.block_size, BLOCK_SIZE);
  cr_assert_geq(l.entries, 4u);
  cr_assert_neq(bat(b, l, 0), 0xFFFFFFFFu, "block 0 not allocated");
  cr_assert_eq(bat(b, l, 1), 0xFFFFFFFFu, "block 1 allocated");
  cr_assert_neq(bat(b, l, 2), 0xFFFFFFFFu, "block 2 not allocated");
  return b;
}

static struct bytes reference_fixed(void)
{
  static unsigned n;
  char name[32];
  snprintf(name, sizeof name, "ref-fixed-%u.vhd", n++);
  const char *path = spath(name);
  create_image(path, VHD_TYPE_FIXED, DISK_SIZE, 0, NULL);
  expect_opens(path, 0);
  struct bytes b = slurp(path);
  cr_assert_eq(b.len, DISK_SIZE + 512);
  return b;
}

/* Write the damaged bytes as NAME and require that they are refused. */
static void refuse_bytes(const char *name, struct bytes b, size_t len, unsigned how)
{
  const char *path = spath(name);
  spit(path, b.p, len);
  expect_refused(path, VHD_FORMAT_VHD, how);
}

/* --- Truncation --------------------------------------------------------- */

Test(badinput_vhd, truncated_dynamic, .init = setup, .fini = teardown)
{
  struct bytes b = reference_dynamic();
  struct layout l = parse(b);
  size_t block0 = (size_t)bat(b, l, 0) * 512, block2 = (size_t)bat(b, l, 2) * 512;
  size_t last = block0 > block2 ? block0 : block2;
  struct { const char *name; size_t len; unsigned how; } cuts[] = {
    /* Too short to be anything: only an explicit VHD open must refuse. */
    { "cut-100.vhd", 100, 0 },
    { "cut-in-header.vhd", l.header + 100, REFUSE_PROBED },
    { "cut-in-bat.vhd", l.table + 4, REFUSE_PROBED },
    { "cut-in-first-block.vhd", (block0 < block2 ? block0 : block2) + 100, REFUSE_PROBED },
    { "cut-in-last-block.vhd", last + 512 + BLOCK_SIZE / 2, REFUSE_PROBED },
    { "cut-footer-and-a-sector.vhd", b.len - 1024, REFUSE_PROBED },
  };
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
    refuse_bytes(cuts[i].name, b, cuts[i].len, cuts[i].how);
  bytes_free(b);
}

/* A fixed VHD whose data is shorter than its footer's current_size. */
Test(badinput_vhd, truncated_fixed_keeps_footer, .init = setup, .fini = teardown)
{
  struct bytes b = reference_fixed();
  struct bytes c = bytes_dup(b);
  size_t keep = DISK_SIZE / 2;
  memcpy(c.p + keep, b.p + DISK_SIZE, 512);   /* footer right after half the data */
  refuse_bytes("fixed-short.vhd", c, keep + 512, REFUSE_PROBED);
  /* And with the footer cut off as well, at least an explicit VHD open fails. */
  refuse_bytes("fixed-no-footer.vhd", b, DISK_SIZE - 4096, 0);
  bytes_free(b);
  bytes_free(c);
}

/* --- Checksums and footer copy -------------------------------------------- */

Test(badinput_vhd, bad_footer_checksum, .init = setup, .fini = teardown)
{
  struct bytes b = reference_dynamic();
  /* Both copies bad, so there is nothing valid to fall back to. */
  put_be32(b.p + b.len - 512 + 64, be32(b.p + b.len - 512 + 64) + 1);
  put_be32(b.p + 64, be32(b.p + 64) + 1);
  refuse_bytes("footer-checksum.vhd", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  struct bytes f = reference_fixed();
  f.p[f.len - 512 + 48 + 7] ^= 0x02;   /* current_size changes, checksum stale */
  refuse_bytes("fixed-footer-checksum.vhd", f, f.len, 0);
  bytes_free(f);
}

Test(badinput_vhd, bad_header_checksum, .init = setup, .fini = teardown)
{
  struct bytes b = reference_dynamic();
  struct layout l = parse(b);
  put_be32(b.p + l.header + 36, be32(b.p + l.header + 36) ^ 0x10);
  refuse_bytes("header-checksum.vhd", b, b.len, REFUSE_PROBED);
  bytes_free(b);
}

Test(badinput_vhd, footer_copy_mismatch, .init = setup, .fini = teardown)
{
  struct bytes b = reference_dynamic();
  /* Both footers have valid checksums but disagree about the disk size. */
  put_be64(b.p + 48, 2 * (uint64_t)DISK_SIZE);
  fix_footer_at(b, 0);
  refuse_bytes("footer-copy-size.vhd", b, b.len, REFUSE_PROBED);
  bytes_free(b);
}

/* --- BAT entries ------------------------------------------------------------ */

Test(badinput_vhd, bat_entry_past_eof, .init = setup, .fini = teardown)
{
  struct bytes b = reference_dynamic();
  struct layout l = parse(b);
  set_bat(b, l, 1, (uint32_t)(b.len / 512) + 100);
  refuse_bytes("bat-past-eof.vhd", b, b.len, REFUSE_PROBED);
  char want[128];
  snprintf(want, sizeof want, "BAT entry 1 points at sector %u (offset %zu), past the end",
           (unsigned)(b.len / 512) + 100, (b.len / 512 + 100) * 512);
  expect_refusal_says(spath("bat-past-eof.vhd"), want, NULL);
  /* Starts inside the file, ends beyond it (over the footer). */
  set_bat(b, l, 1, (uint32_t)(b.len / 512) - 2);
  refuse_bytes("bat-over-eof.vhd", b, b.len, REFUSE_PROBED);
  expect_refusal_says(spath("bat-over-eof.vhd"), "runs past the end of the file's data", NULL);
  /* Largest possible entry: sector arithmetic must not overflow. */
  set_bat(b, l, 1, 0xFFFFFFFEu);
  refuse_bytes("bat-max.vhd", b, b.len, REFUSE_PROBED);
  bytes_free(b);
}

Test(badinput_vhd, bat_entries_overlap, .init = setup, .fini = teardown)
{
  struct bytes b = reference_dynamic();
  struct layout l = parse(b);
  struct bytes c = bytes_dup(b);
  set_bat(c, l, 2, bat(c, l, 0));            /* the same block twice */
  refuse_bytes("bat-same.vhd", c, c.len, REFUSE_PROBED);
  set_bat(c, l, 2, bat(c, l, 0) + 8);        /* starts inside block 0 */
  refuse_bytes("bat-overlap.vhd", c, c.len, REFUSE_PROBED);
  set_bat(c, l, 3, bat(c, l, 0) + 8);        /* an unused entry made to overlap */
  set_bat(c, l, 2, bat(b, l, 2));
  refuse_bytes("bat-overlap-unused.vhd", c, c.len, REFUSE_PROBED);
  bytes_free(b);
  bytes_free(c);
}

Test(badinput_vhd, bat_entry_over_metadata, .init = setup, .fini = teardown)
{
  struct bytes b = reference_dynamic();
  struct layout l = parse(b);
  struct { const char *name; uint32_t sector; const char *says; } cases[] = {
    { "bat-on-footer-copy.vhd", 0, "overlaps the footer copy" },
    { "bat-on-header.vhd", (uint32_t)(l.header / 512), "overlaps the dynamic header" },
    { "bat-on-bat.vhd", (uint32_t)(l.table / 512), "overlaps the BAT" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct bytes c = bytes_dup(b);
    set_bat(c, l, 1, cases[i].sector);
    refuse_bytes(cases[i].name, c, c.len, REFUSE_PROBED);
    expect_refusal_says(spath(cases[i].name), cases[i].says, "past the end");
    bytes_free(c);
  }
  /* A file smaller than one block (nothing allocated yet) whose entry 0 is
   * 0: the block lies on the footer copy; "past the end" would mislead. */
  struct bytes c = bytes_dup(b);
  for (uint32_t i = 0; i < l.entries; i++)
    set_bat(c, l, i, 0xFFFFFFFFu);
  set_bat(c, l, 0, 0);
  size_t small = (size_t)l.table + ((size_t)l.entries * 4 + 511) / 512 * 512;
  cr_assert_lt(small + 512, (size_t)BLOCK_SIZE);
  memcpy(c.p + small, c.p + c.len - 512, 512);   /* the footer after the BAT */
  refuse_bytes("bat-zero-small.vhd", c, small + 512, REFUSE_PROBED);
  expect_refusal_says(spath("bat-zero-small.vhd"),
                      "BAT entry 0 points at sector 0, so its block (offset 0", "past the end");
  expect_refusal_says(spath("bat-zero-small.vhd"), "overlaps the footer copy", NULL);
  bytes_free(c);
  bytes_free(b);
}

/* --- Dynamic header fields -------------------------------------------------- */

static void refuse_header_u32(const char *name, size_t field, uint32_t value)
{
  struct bytes b = reference_dynamic();
  struct layout l = parse(b);
  put_be32(b.p + l.header + field, value);
  fix_header(b, l);
  refuse_bytes(name, b, b.len, REFUSE_PROBED);
  bytes_free(b);
}

Test(badinput_vhd, block_size_not_power_of_two, .init = setup, .fini = teardown)
{
  refuse_header_u32("bs-3x512k.vhd", 32, 3 * 512 * KiB);
  refuse_header_u32("bs-1000.vhd", 32, 1000);
  refuse_header_u32("bs-256.vhd", 32, 256);
  refuse_header_u32("bs-2g.vhd", 32, 0x80000000u);
}

Test(badinput_vhd, block_size_zero, .init = setup, .fini = teardown)
{
  refuse_header_u32("bs-0.vhd", 32, 0);
}

Test(badinput_vhd, table_larger_than_file, .init = setup, .fini = teardown)
{
  /* 2^28 entries = a 1 GiB table: must be refused without allocating it. */
  refuse_header_u32("bat-huge.vhd", 28, 1u << 28);
  refuse_header_u32("bat-max.vhd", 28, 0xFFFFFFFFu);
}

Test(badinput_vhd, table_too_small_for_disk, .init = setup, .fini = teardown)
{
  refuse_header_u32("bat-1.vhd", 28, 1);
  refuse_header_u32("bat-0.vhd", 28, 0);
}

/* An empty dynamic image (no block allocated), 4 MiB in 2 MiB blocks. */
static struct bytes empty_dynamic(const char *name)
{
  const char *path = spath(name);
  create_empty(path, VHD_FORMAT_VHD, DISK_SIZE, 2 * MiB);
  return slurp(path);
}

/* The error of the last failed open names the field. */
static void expect_message_has(const char *path, const char *field)
{
  vhd_image *img = NULL;
  cr_assert_lt(vhd_open(path, VHD_OPEN_RDWR, &img), 0, "%s opened", path);
  cr_assert_not_null(strstr(vhd_last_error(), field), "%s", vhd_last_error());
}

/* A block size no writer uses (2 GiB: one 6-byte write would grow the file
 * by 2 GiB) is refused even when no block is allocated yet; 256 MiB, the
 * largest the library creates, still opens. */
Test(badinput_vhd, block_size_beyond_any_writer, .init = setup, .fini = teardown)
{
  static const uint32_t sizes[] = { 0x80000000u, 512 * MiB, 256 * MiB };
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    char name[32];
    snprintf(name, sizeof name, "bs-%u.vhd", sizes[i]);
    struct bytes b = empty_dynamic(name);
    struct layout l = parse(b);
    put_be32(b.p + l.header + 32, sizes[i]);
    fix_header(b, l);
    const char *path = spath(name);
    spit(path, b.p, b.len);
    if (sizes[i] <= 256 * MiB) {
      expect_opens(path, 0);
    } else {
      expect_refused(path, VHD_FORMAT_VHD, REFUSE_PROBED);
      expect_message_has(path, "block_size");
    }
    bytes_free(b);
  }
}

/* A file holding a BAT of `entries` entries of 512-byte blocks (all unused)
 * that covers the disk: nothing but the length is wrong with it. */
static void write_long_bat(const char *name, uint32_t entries)
{
  struct bytes b = empty_dynamic(name);
  struct layout l = parse(b);
  size_t table = l.table, bat_bytes = ((size_t)entries * 4 + 511) / 512 * 512;
  size_t len = table + bat_bytes + 512;
  uint8_t *p = tracked_malloc(len);
  memcpy(p, b.p, table);
  memset(p + table, 0xFF, bat_bytes);
  memcpy(p + len - 512, b.p + l.footer, 512);
  struct bytes n = { p, len };
  put_be32(p + l.header + 28, entries);
  put_be32(p + l.header + 32, 512);
  fix_header(n, l);
  for (size_t f = 0; f < len; f += len - 512) {
    put_be64(p + f + 40, (uint64_t)entries * 512);   /* original_size */
    put_be64(p + f + 48, (uint64_t)entries * 512);   /* current_size */
  }
  fix_footers(n);
  spit(spath(name), p, len);
  bytes_free(n);
  bytes_free(b);
}

/* The BAT is held in memory, so its length bounds what an open allocates:
 * one entry past the limit is refused naming the field, the limit itself
 * opens. */
Test(badinput_vhd, bat_longer_than_any_writer_makes, .init = setup, .fini = teardown)
{
  write_long_bat("bat-4mi.vhd", 4u << 20);
  expect_opens(spath("bat-4mi.vhd"), 0);
  write_long_bat("bat-4mi1.vhd", (4u << 20) + 1);
  expect_refused(spath("bat-4mi1.vhd"), VHD_FORMAT_VHD, REFUSE_PROBED);
  expect_message_has(spath("bat-4mi1.vhd"), "max_table_entries");
}

/* create follows the same limit: the largest real VHD (2040 GiB in Hyper-V's
 * 512 KiB blocks) is made and opens; a disk whose blocks would need more
 * entries is refused with the block size that would do. */
Test(badinput_vhd, create_keeps_the_bat_limit, .init = setup, .fini = teardown)
{
  create_empty(spath("max.vhd"), VHD_FORMAT_VHD, 2040ull << 30, 512 * KiB);
  expect_opens(spath("max.vhd"), 0);
  struct vhd_create_params p = dynamic_params(VHD_FORMAT_VHD, 2040ull << 30, 256 * KiB);
  vhd_image *img = NULL;
  cr_assert_lt(vhd_create(spath("over.vhd"), &p, &img), 0);
  cr_assert_not_null(strstr(vhd_last_error(), "at least 524288"), "%s", vhd_last_error());
}

Test(badinput_vhd, header_cookie_and_table_offset, .init = setup, .fini = teardown)
{
  struct bytes b = reference_dynamic();
  struct layout l = parse(b);
  struct bytes c = bytes_dup(b);
  memcpy(c.p + l.header, "cxsparsf", 8);
  fix_header(c, l);
  refuse_bytes("header-cookie.vhd", c, c.len, REFUSE_PROBED);
  bytes_free(c);
  c = bytes_dup(b);
  put_be64(c.p + l.header + 16, (uint64_t)b.len + 4096);
  fix_header(c, l);
  refuse_bytes("table-past-eof.vhd", c, c.len, REFUSE_PROBED);
  bytes_free(c);
  c = bytes_dup(b);
  put_be64(c.p + l.header + 16, UINT64_MAX - 511);
  fix_header(c, l);
  refuse_bytes("table-offset-max.vhd", c, c.len, REFUSE_PROBED);
  bytes_free(c);
  bytes_free(b);
}

/* --- Footer fields ------------------------------------------------------------ */

static void refuse_footer_u64(const char *name, size_t field, uint64_t value)
{
  struct bytes b = reference_dynamic();
  put_be64(b.p + b.len - 512 + field, value);
  put_be64(b.p + field, value);
  fix_footers(b);
  refuse_bytes(name, b, b.len, REFUSE_PROBED);
  bytes_free(b);
}

Test(badinput_vhd, absurd_current_size, .init = setup, .fini = teardown)
{
  refuse_footer_u64("size-2p63.vhd", 48, (uint64_t)1 << 63);
  refuse_footer_u64("size-max.vhd", 48, UINT64_MAX);
  refuse_footer_u64("size-unaligned-huge.vhd", 48, ((uint64_t)1 << 50) + 1);

  struct bytes f = reference_fixed();
  put_be64(f.p + f.len - 512 + 48, (uint64_t)1 << 63);
  fix_footer_at(f, f.len - 512);
  refuse_bytes("fixed-size-2p63.vhd", f, f.len, REFUSE_PROBED);
  bytes_free(f);
}

Test(badinput_vhd, data_offset_past_eof, .init = setup, .fini = teardown)
{
  struct bytes b = reference_dynamic();
  uint64_t len = b.len;
  bytes_free(b);
  refuse_footer_u64("data-offset-past-eof.vhd", 16, len + 4096 * 512);
  refuse_footer_u64("data-offset-in-footer.vhd", 16, len - 256);
  refuse_footer_u64("data-offset-near-max.vhd", 16, UINT64_MAX - 1023);
}

Test(badinput_vhd, bad_disk_type, .init = setup, .fini = teardown)
{
  struct bytes b = reference_dynamic();
  for (uint32_t t = 0; t <= 6; t++) {
    if (t == 2 || t == 3 || t == 4)
      continue;
    char name[32];
    snprintf(name, sizeof name, "type-%u.vhd", t);
    struct bytes c = bytes_dup(b);
    put_be32(c.p + c.len - 512 + 60, t);
    put_be32(c.p + 60, t);
    fix_footers(c);
    refuse_bytes(name, c, c.len, REFUSE_PROBED);
    bytes_free(c);
  }
  bytes_free(b);
}

/* --- Parent chains ------------------------------------------------------------- */

/* The child of `parent` in `child` (both names of the same length). */
static void make_child(const char *child, const char *parent)
{
  create_image(spath(child), VHD_TYPE_DIFFERENCING, 0, BLOCK_SIZE, spath(parent));
}

/* Point the differencing image at `path` to another parent: rewrite every
 * stored name and the parent unique id, with valid checksums. */
static void repoint(const char *path, const char *old_name, const char *new_name,
                    const uint8_t new_parent_id[16])
{
  struct bytes b = slurp(path);
  struct layout l = parse(b);
  cr_assert_gt(replace_name(b, old_name, new_name), 0, "%s: no locator names %s", path, old_name);
  memcpy(b.p + l.header + 40, new_parent_id, 16);
  fix_header(b, l);
  spit(path, b.p, b.len);
  bytes_free(b);
}

static void unique_id(const char *path, uint8_t id[16])
{
  struct bytes b = slurp(path);
  memcpy(id, b.p + b.len - 512 + 68, 16);
  bytes_free(b);
}

/* Give the image a new unique id (both footers), as a copy made by a tool
 * that does so would have. */
static void set_unique_id(const char *path, unsigned n)
{
  struct bytes b = slurp(path);
  for (unsigned i = 0; i < 16; i++)
    b.p[b.len - 512 + 68 + i] = b.p[68 + i] = (uint8_t)(0xA0 + n * 3 + i);
  fix_footers(b);
  spit(path, b.p, b.len);
  bytes_free(b);
}

Test(badinput_vhd, parent_loop, .init = setup, .fini = teardown)
{
  create_image(spath("px.vhd"), VHD_TYPE_DYNAMIC, DISK_SIZE, BLOCK_SIZE, NULL);
  make_child("pa.vhd", "px.vhd");
  make_child("pb.vhd", "pa.vhd");
  expect_opens(spath("pb.vhd"), 0);
  uint8_t id[16];
  unique_id(spath("pb.vhd"), id);
  repoint(spath("pa.vhd"), "px.vhd", "pb.vhd", id);   /* pa -> pb -> pa */
  expect_opens(spath("pa.vhd"), VHD_OPEN_NO_PARENT);
  expect_refused(spath("pa.vhd"), VHD_FORMAT_VHD, REFUSE_PROBED | REFUSE_CHAIN);
  expect_refused(spath("pb.vhd"), VHD_FORMAT_VHD, REFUSE_PROBED | REFUSE_CHAIN);

  /* An image that is its own parent. */
  create_image(spath("qx.vhd"), VHD_TYPE_DYNAMIC, DISK_SIZE, BLOCK_SIZE, NULL);
  make_child("qs.vhd", "qx.vhd");
  unique_id(spath("qs.vhd"), id);
  repoint(spath("qs.vhd"), "qx.vhd", "qs.vhd", id);
  expect_refused(spath("qs.vhd"), VHD_FORMAT_VHD, REFUSE_PROBED | REFUSE_CHAIN);
}

Test(badinput_vhd, missing_parent, .init = setup, .fini = teardown)
{
  create_image(spath("mbase.vhd"), VHD_TYPE_DYNAMIC, DISK_SIZE, BLOCK_SIZE, NULL);
  make_child("mkid.vhd", "mbase.vhd");
  expect_opens(spath("mkid.vhd"), 0);
  cr_assert_eq(unlink(spath("mbase.vhd")), 0);
  expect_opens(spath("mkid.vhd"), VHD_OPEN_NO_PARENT);
  expect_refused(spath("mkid.vhd"), VHD_FORMAT_VHD, REFUSE_PROBED | REFUSE_CHAIN);
  vhd_image *img = NULL;
  cr_assert_lt(vhd_open(spath("mkid.vhd"), VHD_OPEN_RDONLY, &img), 0);
  cr_assert_not_null(strstr(vhd_last_error(), "mbase.vhd"),
                     "message does not name the missing parent: %s", vhd_last_error());
}

Test(badinput_vhd, parent_with_wrong_id, .init = setup, .fini = teardown)
{
  create_image(spath("wbase.vhd"), VHD_TYPE_DYNAMIC, DISK_SIZE, BLOCK_SIZE, NULL);
  make_child("wkid.vhd", "wbase.vhd");
  expect_opens(spath("wkid.vhd"), 0);
  /* A different image under the parent's name. */
  cr_assert_eq(unlink(spath("wbase.vhd")), 0);
  create_image(spath("wbase.vhd"), VHD_TYPE_DYNAMIC, DISK_SIZE, BLOCK_SIZE, NULL);
  expect_opens(spath("wkid.vhd"), VHD_OPEN_NO_PARENT);
  expect_refused(spath("wkid.vhd"), VHD_FORMAT_VHD, REFUSE_PROBED | REFUSE_CHAIN);
  vhd_image *img = NULL;
  cr_assert_lt(vhd_open(spath("wkid.vhd"), VHD_OPEN_RDONLY, &img), 0);
  cr_assert_not_null(strstr(vhd_last_error(), "wbase.vhd"),
                     "message does not name the parent: %s", vhd_last_error());
}

/* A chain of `images` files l00 (base) .. lNN (top), made by copying one
 * differencing image and repointing each copy at the one below, so that the
 * library's own depth limit does not stop us from making it. */
static const char *make_chain(unsigned images)
{
  static char top[16];
  create_image(spath("l00.vhd"), VHD_TYPE_DYNAMIC, DISK_SIZE, BLOCK_SIZE, NULL);
  make_child("l01.vhd", "l00.vhd");
  struct bytes tmpl = slurp(spath("l01.vhd"));
  for (unsigned i = 2; i < images; i++) {
    char name[16], below[16];
    snprintf(name, sizeof name, "l%02u.vhd", i);
    snprintf(below, sizeof below, "l%02u.vhd", i - 1);
    spit(spath(name), tmpl.p, tmpl.len);
    set_unique_id(spath(name), i);
    uint8_t id[16];
    unique_id(spath(below), id);
    repoint(spath(name), "l00.vhd", below, id);
  }
  bytes_free(tmpl);
  snprintf(top, sizeof top, "l%02u.vhd", images - 1);
  return spath(top);
}

Test(badinput_vhd, chain_at_depth_limit_opens, .init = setup, .fini = teardown)
{
  /* Top at depth 0, base at depth VHD_MAX_CHAIN_DEPTH (lib/image.h). */
  const char *top = make_chain(32 + 1);
  expect_opens(top, 0);
}

Test(badinput_vhd, chain_deeper_than_32, .init = setup, .fini = teardown)
{
  const char *top = make_chain(32 + 2);
  expect_opens(top, VHD_OPEN_NO_PARENT);
  expect_refused(top, VHD_FORMAT_VHD, REFUSE_PROBED | REFUSE_CHAIN);
}

Test(badinput_vhd, chain_much_deeper, .init = setup, .fini = teardown)
{
  const char *top = make_chain(60);
  expect_refused(top, VHD_FORMAT_VHD, REFUSE_PROBED | REFUSE_CHAIN);
}
