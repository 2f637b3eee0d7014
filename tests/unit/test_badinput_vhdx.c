/* SPDX-License-Identifier: BSD-3-Clause */
/* Bad-input catalogue for VHDX: images made by the library, then damaged
 * one structure at a time (file identifier, headers, region tables,
 * metadata items, BAT entries, log, parent chain). Each must fail to open
 * with a negative errno and a one-line message naming the file, never
 * crash (run under -DVHD_SANITIZE=ON), never change the file.
 *
 * The layout is found here from the specification (MS-VHDX) and CRC-32C is
 * our own routine, so a damaged field can be made to pass the earlier
 * checks and reach the one under test. */
#include "badinput.h"

#define MiB (1024u * 1024u)
#define DISK_SIZE (8 * MiB)
#define BLOCK_SIZE MiB

static void setup(void) { scratch_init(); }
static void teardown(void) { scratch_fini(); }

/* CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, bit by bit. */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
  }
  return ~crc;
}

Test(badinput_vhdx, crc32c_oracle_check_value)
{
  cr_assert_eq(crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
}

/* Set the CRC-32C field at +4 of the structure of n bytes at off. */
static void fix_crc(struct bytes b, size_t off, size_t n)
{
  put_le32(b.p + off + 4, 0);
  put_le32(b.p + off + 4, crc32c(b.p + off, n));
}

#define HEADER1 (64 * 1024u)
#define HEADER2 (128 * 1024u)
#define REGION1 (192 * 1024u)
#define REGION2 (256 * 1024u)

static const uint8_t GUID_BAT[16] = { 0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
                                      0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08 };
static const uint8_t GUID_META[16] = { 0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B,
                                       0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E };
static const uint8_t GUID_FILE_PARAMS[16] = { 0x37, 0x67, 0xA1, 0xCA, 0x36, 0xFA, 0x43, 0x4D,
                                              0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B };
static const uint8_t GUID_DISK_SIZE[16] = { 0x24, 0x42, 0xA5, 0x2F, 0x1B, 0xCD, 0x76, 0x48,
                                            0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8 };
static const uint8_t GUID_LOGICAL[16] = { 0x1D, 0xBF, 0x41, 0x81, 0x6F, 0xA9, 0x09, 0x47,
                                          0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F };
static const uint8_t GUID_PHYSICAL[16] = { 0xC7, 0x48, 0xA3, 0xCD, 0x5D, 0x44, 0x71, 0x44,
                                           0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56 };

/* Where the structures are. */
struct layout {
  size_t header;              /* the current header (larger sequence number) */
  uint64_t log_offset;
  uint32_t log_length;
  uint64_t bat, meta;         /* region file offsets */
  uint32_t bat_len, meta_len;
  size_t bat_entry, meta_entry;  /* region table entries (in copy 1) */
};

static size_t region_entry(struct bytes b, size_t table, const uint8_t guid[16])
{
  uint32_t n = le32(b.p + table + 8);
  for (uint32_t i = 0; i < n && i < 2047; i++)
    if (memcmp(b.p + table + 16 + 32 * i, guid, 16) == 0)
      return table + 16 + 32 * i;
  cr_assert_fail("region not found");
  return 0;
}

static struct layout parse(struct bytes b)
{
  struct layout l;
  cr_assert_gt(b.len, 4 * MiB);
  cr_assert_eq(memcmp(b.p, "vhdxfile", 8), 0, "made image has no file identifier");
  cr_assert_eq(memcmp(b.p + HEADER1, "head", 4), 0);
  cr_assert_eq(memcmp(b.p + HEADER2, "head", 4), 0);
  l.header = le64(b.p + HEADER1 + 8) >= le64(b.p + HEADER2 + 8) ? HEADER1 : HEADER2;
  l.log_length = le32(b.p + l.header + 68);
  l.log_offset = le64(b.p + l.header + 72);
  cr_assert_eq(memcmp(b.p + REGION1, "regi", 4), 0);
  l.bat_entry = region_entry(b, REGION1, GUID_BAT);
  l.meta_entry = region_entry(b, REGION1, GUID_META);
  l.bat = le64(b.p + l.bat_entry + 16);
  l.bat_len = le32(b.p + l.bat_entry + 24);
  l.meta = le64(b.p + l.meta_entry + 16);
  l.meta_len = le32(b.p + l.meta_entry + 24);
  cr_assert_lt(l.bat, b.len);
  cr_assert_lt(l.meta, b.len);
  cr_assert_eq(memcmp(b.p + l.meta, "metadata", 8), 0);
  return l;
}

/* Both headers: apply the same 32/64-bit patch and fix both CRCs. */
static void headers_put32(struct bytes b, size_t field, uint32_t v)
{
  put_le32(b.p + HEADER1 + field, v);
  put_le32(b.p + HEADER2 + field, v);
  fix_crc(b, HEADER1, 4096);
  fix_crc(b, HEADER2, 4096);
}

static void headers_put64(struct bytes b, size_t field, uint64_t v)
{
  put_le64(b.p + HEADER1 + field, v);
  put_le64(b.p + HEADER2 + field, v);
  fix_crc(b, HEADER1, 4096);
  fix_crc(b, HEADER2, 4096);
}

/* Both region tables: the same patch at the same offset inside the table. */
static void regions_patch(struct bytes b, size_t off_in_table, const void *data, size_t n)
{
  memcpy(b.p + REGION1 + off_in_table, data, n);
  memcpy(b.p + REGION2 + off_in_table, data, n);
  fix_crc(b, REGION1, 64 * 1024);
  fix_crc(b, REGION2, 64 * 1024);
}

static void regions_put32(struct bytes b, size_t off_in_table, uint32_t v)
{
  uint8_t x[4];
  put_le32(x, v);
  regions_patch(b, off_in_table, x, 4);
}

static void regions_put64(struct bytes b, size_t off_in_table, uint64_t v)
{
  uint8_t x[8];
  put_le64(x, v);
  regions_patch(b, off_in_table, x, 8);
}

/* The metadata table entry of an item (absolute file offset). */
static size_t meta_entry(struct bytes b, struct layout l, const uint8_t guid[16])
{
  uint16_t n = (uint16_t)(b.p[l.meta + 10] | b.p[l.meta + 11] << 8);
  for (unsigned i = 0; i < n && i < 2047; i++)
    if (memcmp(b.p + l.meta + 32 + 32 * i, guid, 16) == 0)
      return l.meta + 32 + 32 * i;
  cr_assert_fail("metadata item not found");
  return 0;
}

/* The payload of an item (absolute file offset). */
static size_t meta_item(struct bytes b, struct layout l, const uint8_t guid[16])
{
  return l.meta + le32(b.p + meta_entry(b, l, guid) + 16);
}

static uint64_t bat_get(struct bytes b, struct layout l, unsigned i)
{
  return le64(b.p + l.bat + 8 * i);   /* chunk ratio > 8: no bitmap entries among the first */
}

static void bat_put(struct bytes b, struct layout l, unsigned i, uint64_t v)
{
  put_le64(b.p + l.bat + 8 * i, v);
}

static void create_image(const char *path, enum vhd_disk_type type, const char *parent)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.type = type;
  p.size = parent ? 0 : DISK_SIZE;
  p.block_size = BLOCK_SIZE;
  p.parent = parent;
  vhd_image *img = NULL;
  cr_assert_eq(vhd_create(path, &p, &img), 0, "create %s: %s", path, vhd_last_error());
  uint8_t buf[8192];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t)(i * 11 + 3);
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 0), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 2 * MiB + 4096), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
}

/* The reference dynamic image: blocks 0 and 2 FULLY_PRESENT, 1 and 3 not. */
static struct bytes reference(void)
{
  static unsigned n;
  char name[32];
  snprintf(name, sizeof name, "ref-%u.vhdx", n++);
  const char *path = spath(name);
  create_image(path, VHD_TYPE_DYNAMIC, NULL);
  expect_opens(path, 0);
  struct bytes b = slurp(path);
  struct layout l = parse(b);
  cr_assert_eq(bat_get(b, l, 0) & 7, 6u, "block 0 not FULLY_PRESENT");
  cr_assert_eq(bat_get(b, l, 2) & 7, 6u, "block 2 not FULLY_PRESENT");
  cr_assert_lt(bat_get(b, l, 1) & 7, 6u, "block 1 present");
  cr_assert_eq(le32(b.p + meta_item(b, l, GUID_FILE_PARAMS)), BLOCK_SIZE);
  return b;
}

static void refuse_bytes(const char *name, struct bytes b, size_t len, unsigned how)
{
  const char *path = spath(name);
  spit(path, b.p, len);
  expect_refused(path, VHD_FORMAT_VHDX, how);
}

/* --- Truncation and identification ------------------------------------- */

Test(badinput_vhdx, truncated, .init = setup, .fini = teardown)
{
  struct bytes b = reference();
  struct layout l = parse(b);
  uint64_t block2 = bat_get(b, l, 2) & ~(uint64_t)0xFFFFF;
  struct { const char *name; size_t len; unsigned how; } cuts[] = {
    { "cut-in-identifier.vhdx", 100, 0 },
    { "cut-in-header.vhdx", HEADER1 + 1000, REFUSE_PROBED },
    { "cut-in-regions.vhdx", REGION1 + 100, REFUSE_PROBED },
    { "cut-after-header-section.vhdx", MiB, REFUSE_PROBED },
    { "cut-in-bat.vhdx", (size_t)l.bat + 8, REFUSE_PROBED },
    { "cut-in-metadata.vhdx", (size_t)l.meta + 100, REFUSE_PROBED },
    /* A partly present last block is tolerated (qemu made such files);
     * a block wholly past the end is not. */
    { "cut-before-block.vhdx", (size_t)block2, REFUSE_PROBED },
  };
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
    if (cuts[i].len < b.len)
      refuse_bytes(cuts[i].name, b, cuts[i].len, cuts[i].how);
  bytes_free(b);
}

Test(badinput_vhdx, file_identifier, .init = setup, .fini = teardown)
{
  struct bytes b = reference();
  memcpy(b.p, "vhdxfilf", 8);
  refuse_bytes("identifier.vhdx", b, b.len, 0);
  bytes_free(b);
}

/* --- Headers ------------------------------------------------------------- */

Test(badinput_vhdx, header_checksums, .init = setup, .fini = teardown)
{
  struct bytes b = reference();
  b.p[HEADER1 + 200] ^= 1;   /* a reserved byte: the CRC covers all 4 KiB */
  b.p[HEADER2 + 200] ^= 1;
  refuse_bytes("headers-crc.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);
}

Test(badinput_vhdx, header_fields, .init = setup, .fini = teardown)
{
  struct { const char *name; size_t field; int wide; uint64_t v; } cases[] = {
    { "hdr-version-2.vhdx", 66, 16, 2 },
    { "hdr-version-0.vhdx", 66, 16, 0 },
    { "hdr-log-offset-unaligned.vhdx", 72, 64, MiB + 4096 },
    { "hdr-log-offset-in-header.vhdx", 72, 64, 64 * 1024 },
    { "hdr-log-offset-past-eof.vhdx", 72, 64, (uint64_t)1 << 40 },
    { "hdr-log-offset-max.vhdx", 72, 64, UINT64_MAX & ~(uint64_t)0xFFFFF },
    { "hdr-log-length-unaligned.vhdx", 68, 32, MiB + 512 },
    { "hdr-log-length-huge.vhdx", 68, 32, 0xFFF00000u },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct bytes b = reference();
    if (cases[i].wide == 16) {
      uint8_t x[2] = { (uint8_t)cases[i].v, (uint8_t)(cases[i].v >> 8) };
      memcpy(b.p + HEADER1 + cases[i].field, x, 2);
      memcpy(b.p + HEADER2 + cases[i].field, x, 2);
      fix_crc(b, HEADER1, 4096);
      fix_crc(b, HEADER2, 4096);
    } else if (cases[i].wide == 32) {
      headers_put32(b, cases[i].field, (uint32_t)cases[i].v);
    } else {
      headers_put64(b, cases[i].field, cases[i].v);
    }
    refuse_bytes(cases[i].name, b, b.len, REFUSE_PROBED);
    bytes_free(b);
  }
}

Test(badinput_vhdx, equal_sequence_numbers_different_headers, .init = setup, .fini = teardown)
{
  /* Accepted only when the two headers are byte-identical (Disk2VHD). */
  struct bytes b = reference();
  put_le64(b.p + HEADER1 + 8, 7);
  put_le64(b.p + HEADER2 + 8, 7);
  b.p[HEADER2 + 16] ^= 0x55;   /* file_write_guid differs */
  fix_crc(b, HEADER1, 4096);
  fix_crc(b, HEADER2, 4096);
  refuse_bytes("hdr-same-seq.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);
}

/* log_guid set, but no entry carries it: the log is empty (QEMU's reading,
 * lib/vhdx/log.c), so the file opens and vhd_check only warns. */
Test(badinput_vhdx, log_guid_without_log, .init = setup, .fini = teardown)
{
  struct bytes b = reference();
  uint8_t guid[16];
  for (int i = 0; i < 16; i++)
    guid[i] = (uint8_t)(0x31 + i);
  memcpy(b.p + HEADER1 + 48, guid, 16);
  memcpy(b.p + HEADER2 + 48, guid, 16);
  fix_crc(b, HEADER1, 4096);
  fix_crc(b, HEADER2, 4096);
  const char *path = spath("log-guid-no-entries.vhdx");
  spit(path, b.p, b.len);
  expect_opens(path, 0);
  struct vhd_check_result res;
  memset(&res, 0, sizeof res);
  cr_assert_eq(vhd_check(path, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_assert_eq(res.corruptions, 0u);
  cr_assert_geq(res.warnings, 1u);
  bytes_free(b);
}

/* A pending log is read into memory to be replayed, so its length is
 * capped (32 MiB; writers use 1 MiB): a 64 MiB log with its GUID set is
 * refused naming the field, before anything is read. */
Test(badinput_vhdx, pending_log_too_long, .init = setup, .fini = teardown)
{
  struct bytes b = reference();
  uint64_t end = (b.len + MiB - 1) / MiB * MiB;
  for (int i = 0; i < 16; i++)
    b.p[HEADER1 + 48 + i] = b.p[HEADER2 + 48 + i] = (uint8_t)(0x41 + i);
  headers_put32(b, 68, 64 * MiB);
  headers_put64(b, 72, end);
  const char *path = spath("log-64m.vhdx");
  spit(path, b.p, b.len);
  cr_assert_eq(truncate(path, (off_t)(end + 64 * MiB)), 0);
  expect_refused(path, VHD_FORMAT_VHDX, REFUSE_PROBED);
  vhd_image *img = NULL;
  cr_assert_lt(vhd_open(path, VHD_OPEN_RDONLY, &img), 0);
  cr_assert_not_null(strstr(vhd_last_error(), "log_length"), "%s", vhd_last_error());
  bytes_free(b);
}

/* --- Region tables ----------------------------------------------------- */

Test(badinput_vhdx, region_table_checksums, .init = setup, .fini = teardown)
{
  struct bytes b = reference();
  b.p[REGION1 + 40000] ^= 1;
  b.p[REGION2 + 40000] ^= 1;
  refuse_bytes("regions-crc.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);
}

Test(badinput_vhdx, region_entries, .init = setup, .fini = teardown)
{
  struct bytes ref = reference();
  struct layout l = parse(ref);
  size_t bat = l.bat_entry - REGION1, meta = l.meta_entry - REGION1;
  uint32_t count = le32(ref.p + REGION1 + 8);
  struct bytes b;

  b = bytes_dup(ref);   /* BAT region on top of the metadata region */
  regions_put64(b, bat + 16, l.meta);
  refuse_bytes("region-overlap.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* inside the header section */
  regions_put64(b, meta + 16, 0);
  refuse_bytes("region-in-header.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* on the log */
  regions_put64(b, meta + 16, l.log_offset);
  refuse_bytes("region-on-log.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* past the end of the file */
  regions_put64(b, bat + 16, (uint64_t)b.len + 16 * MiB);
  refuse_bytes("region-past-eof.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* not MiB aligned */
  regions_put64(b, bat + 16, l.bat + 4096);
  refuse_bytes("region-unaligned.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* offset near 2^64 */
  regions_put64(b, bat + 16, UINT64_MAX & ~(uint64_t)0xFFFFF);
  refuse_bytes("region-offset-max.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* zero length */
  regions_put32(b, meta + 24, 0);
  refuse_bytes("region-length-0.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* the metadata region missing: its GUID changed */
  uint8_t other[16];
  memcpy(other, GUID_META, 16);
  other[15] ^= 0xFF;
  regions_patch(b, meta, other, 16);
  refuse_bytes("region-meta-missing.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* the BAT region twice */
  regions_patch(b, meta, GUID_BAT, 16);
  refuse_bytes("region-bat-twice.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* an unknown region marked required */
  uint8_t entry[32] = { 0 };
  for (int i = 0; i < 16; i++)
    entry[i] = (uint8_t)(0xC0 + i);
  put_le64(entry + 16, 200 * (uint64_t)MiB);
  put_le32(entry + 24, MiB);
  put_le32(entry + 28, 1);
  regions_patch(b, 16 + 32 * count, entry, 32);
  regions_put32(b, 8, count + 1);
  refuse_bytes("region-unknown-required.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* more entries than a table can hold */
  regions_put32(b, 8, 4096);
  refuse_bytes("region-count.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);
  bytes_free(ref);
}

/* --- Metadata ----------------------------------------------------------- */

static void refuse_item_u32(const char *name, const uint8_t guid[16], size_t field, uint32_t v)
{
  struct bytes b = reference();
  struct layout l = parse(b);
  put_le32(b.p + meta_item(b, l, guid) + field, v);
  refuse_bytes(name, b, b.len, REFUSE_PROBED);
  bytes_free(b);
}

static void refuse_item_u64(const char *name, const uint8_t guid[16], uint64_t v)
{
  struct bytes b = reference();
  struct layout l = parse(b);
  put_le64(b.p + meta_item(b, l, guid), v);
  refuse_bytes(name, b, b.len, REFUSE_PROBED);
  bytes_free(b);
}

Test(badinput_vhdx, block_size, .init = setup, .fini = teardown)
{
  refuse_item_u32("bs-0.vhdx", GUID_FILE_PARAMS, 0, 0);
  refuse_item_u32("bs-3m.vhdx", GUID_FILE_PARAMS, 0, 3 * MiB);
  refuse_item_u32("bs-512k.vhdx", GUID_FILE_PARAMS, 0, MiB / 2);
  refuse_item_u32("bs-512m.vhdx", GUID_FILE_PARAMS, 0, 512 * MiB);
  refuse_item_u32("bs-max.vhdx", GUID_FILE_PARAMS, 0, 0x80000000u);
}

Test(badinput_vhdx, has_parent_without_locator, .init = setup, .fini = teardown)
{
  refuse_item_u32("has-parent.vhdx", GUID_FILE_PARAMS, 4, 2);
}

Test(badinput_vhdx, sector_sizes, .init = setup, .fini = teardown)
{
  refuse_item_u32("lss-1024.vhdx", GUID_LOGICAL, 0, 1024);
  refuse_item_u32("lss-0.vhdx", GUID_LOGICAL, 0, 0);
  refuse_item_u32("pss-1000.vhdx", GUID_PHYSICAL, 0, 1000);
}

Test(badinput_vhdx, virtual_size, .init = setup, .fini = teardown)
{
  refuse_item_u64("size-0.vhdx", GUID_DISK_SIZE, 0);
  refuse_item_u64("size-unaligned.vhdx", GUID_DISK_SIZE, DISK_SIZE + 100);
  refuse_item_u64("size-over-64t.vhdx", GUID_DISK_SIZE, ((uint64_t)64 << 40) + MiB);
  refuse_item_u64("size-2p63.vhdx", GUID_DISK_SIZE, (uint64_t)1 << 63);
  /* Larger than the BAT region can map (8 entries' worth of region is 1 MiB
   * = 131072 entries; ask for far more blocks than that). */
  refuse_item_u64("size-bat-too-small.vhdx", GUID_DISK_SIZE, (uint64_t)1 << 40);
}

/* An empty 1 MiB-block VHDX that claims a disk of size bytes, its BAT
 * region grown to hold every entry that needs and the file (sparse) to
 * hold the region: nothing is wrong with it but its size. */
static const char *big_disk(const char *name, uint64_t size)
{
  const char *path = spath(name);
  create_empty(path, VHD_FORMAT_VHDX, DISK_SIZE, MiB);
  cr_assert_eq(truncate(path, 5 * MiB), 0);   /* parse() wants more than 4 MiB */
  struct bytes b = slurp(path);
  struct layout l = parse(b);
  put_le64(b.p + meta_item(b, l, GUID_DISK_SIZE), size);
  uint64_t chunks = (size / MiB + 4095) / 4096;   /* chunk ratio 4096 */
  uint64_t region = (chunks * 4097 * 8 + MiB - 1) / MiB * MiB;
  regions_put32(b, l.bat_entry - REGION1 + 24, (uint32_t)region);
  spit(path, b.p, b.len);
  cr_assert_eq(truncate(path, (off_t)(l.bat + region)), 0);
  bytes_free(b);
  return path;
}

/* The BAT is held in memory, so the entries a geometry needs are capped
 * (9 Mi: 72 MiB): 10 TiB in 1 MiB blocks (10.2 Mi entries) is refused
 * naming the file and the limit, 8 TiB (8.4 Mi) opens. */
Test(badinput_vhdx, bat_beyond_the_memory_limit, .init = setup, .fini = teardown)
{
  const char *path = big_disk("10t-1m.vhdx", 10ull << 40);
  expect_refused(path, VHD_FORMAT_VHDX, REFUSE_PROBED);
  vhd_image *img = NULL;
  cr_assert_lt(vhd_open(path, VHD_OPEN_RDONLY, &img), 0);
  cr_assert_not_null(strstr(vhd_last_error(), "BAT entries"), "%s", vhd_last_error());
  expect_opens(big_disk("8t-1m.vhdx", 8ull << 40), 0);
}

/* create follows the same limit and says which block size would do. */
Test(badinput_vhdx, create_keeps_the_bat_limit, .init = setup, .fini = teardown)
{
  struct vhd_create_params p = dynamic_params(VHD_FORMAT_VHDX, 64ull << 40, MiB);
  vhd_image *img = NULL;
  cr_assert_lt(vhd_create(spath("64t-1m.vhdx"), &p, &img), 0);
  cr_assert_not_null(strstr(vhd_last_error(), "blocks of 8388608 bytes"), "%s",
                     vhd_last_error());
  create_empty(spath("64t-8m.vhdx"), VHD_FORMAT_VHDX, 64ull << 40, 8 * MiB);
  expect_opens(spath("64t-8m.vhdx"), 0);
}

Test(badinput_vhdx, metadata_table, .init = setup, .fini = teardown)
{
  struct bytes ref = reference();
  struct layout l = parse(ref);
  struct bytes b;

  b = bytes_dup(ref);   /* a required item missing */
  b.p[meta_entry(b, l, GUID_DISK_SIZE) + 15] ^= 0xFF;
  refuse_bytes("meta-size-missing.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* an unknown item marked required */
  size_t pe = meta_entry(b, l, GUID_PHYSICAL);
  b.p[pe + 15] ^= 0xFF;                          /* now unknown... */
  put_le32(b.p + pe + 24, le32(b.p + pe + 24) | 4);   /* ...and required */
  refuse_bytes("meta-unknown-required.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* an item past the end of the region */
  put_le32(b.p + meta_entry(b, l, GUID_DISK_SIZE) + 16, l.meta_len - 4);
  refuse_bytes("meta-item-past-region.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* an item inside the table itself */
  put_le32(b.p + meta_entry(b, l, GUID_DISK_SIZE) + 16, 16);
  refuse_bytes("meta-item-in-table.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* an item larger than 1 MiB */
  put_le32(b.p + meta_entry(b, l, GUID_DISK_SIZE) + 20, 0xFFFFFFF0u);
  refuse_bytes("meta-item-huge.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* two items on the same bytes */
  put_le32(b.p + meta_entry(b, l, GUID_LOGICAL) + 16,
           le32(b.p + meta_entry(b, l, GUID_FILE_PARAMS) + 16));
  refuse_bytes("meta-items-overlap.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* more entries than the table holds */
  b.p[l.meta + 10] = 0xFF;
  b.p[l.meta + 11] = 0xFF;
  refuse_bytes("meta-count.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);

  b = bytes_dup(ref);   /* signature */
  memcpy(b.p + l.meta, "metadatb", 8);
  refuse_bytes("meta-signature.vhdx", b, b.len, REFUSE_PROBED);
  bytes_free(b);
  bytes_free(ref);
}

/* --- BAT ------------------------------------------------------------------ */

Test(badinput_vhdx, bat_entries, .init = setup, .fini = teardown)
{
  struct bytes ref = reference();
  struct layout l = parse(ref);
  uint64_t b0 = bat_get(ref, l, 0);
  /* says: what the refusal must tell (NULL: not checked here). */
  struct { const char *name; unsigned index; uint64_t value; const char *says; } cases[] = {
    { "bat-past-eof.vhdx", 1, (((uint64_t)ref.len + 64 * MiB) & ~(uint64_t)0xFFFFF) | 6,
      "payload block 1 is at offset" },
    { "bat-max-offset.vhdx", 1, (UINT64_MAX & ~(uint64_t)0xFFFFF) | 6, "past the end of the file" },
    { "bat-in-header.vhdx", 1, 0 | 6,
      "payload block 1 is at offset 0, inside the header section" },
    { "bat-on-log.vhdx", 1, l.log_offset | 6, NULL },
    { "bat-on-bat.vhdx", 1, l.bat | 6, NULL },
    { "bat-on-metadata.vhdx", 1, l.meta | 6, NULL },
    { "bat-same-block.vhdx", 1, b0, NULL },
    { "bat-state-4.vhdx", 1, (b0 & ~(uint64_t)7) | 4, NULL },
    { "bat-partial-not-diff.vhdx", 0, (b0 & ~(uint64_t)7) | 7, NULL },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct bytes b = bytes_dup(ref);
    bat_put(b, l, cases[i].index, cases[i].value);
    refuse_bytes(cases[i].name, b, b.len, REFUSE_PROBED);
    if (cases[i].says)
      expect_refusal_says(spath(cases[i].name), cases[i].says, "outside the file");
    bytes_free(b);
  }
  /* Past the end: says so, with the file's length. */
  struct bytes b = bytes_dup(ref);
  bat_put(b, l, 1, cases[0].value);
  refuse_bytes("bat-past-eof-2.vhdx", b, b.len, REFUSE_PROBED);
  char want[96];
  snprintf(want, sizeof want, "past the end of the file (%zu bytes)", ref.len);
  expect_refusal_says(spath("bat-past-eof-2.vhdx"), want, NULL);
  bytes_free(b);
  bytes_free(ref);
}

/* --- Parent chains ----------------------------------------------------- */

/* A GUID as the text a locator stores ("{...}", Microsoft field order). */
static void guid_text(const uint8_t *g, int upper, char out[39])
{
  snprintf(out, 39,
           upper ? "{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}"
                 : "{%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x}",
           le32(g), (unsigned)(g[4] | g[5] << 8), (unsigned)(g[6] | g[7] << 8),
           g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* data_write_guid of the current header of the image at path. */
static void data_write_guid(const char *path, uint8_t g[16])
{
  struct bytes b = slurp(path);
  struct layout l = parse(b);
  memcpy(g, b.p + l.header + 32, 16);
  bytes_free(b);
}

/* Point the child in b to another parent: names and parent_linkage. */
static void repoint_bytes(struct bytes b, const uint8_t old_guid[16], const char *old_name,
                          const uint8_t new_guid[16], const char *new_name)
{
  cr_assert_gt(replace_name(b, old_name, new_name), 0, "no locator names %s", old_name);
  int done = 0;
  for (int upper = 0; upper < 2; upper++) {
    char from[39], to[39];
    guid_text(old_guid, upper, from);
    guid_text(new_guid, upper, to);
    done += replace_name(b, from, to);
  }
  cr_assert_gt(done, 0, "parent_linkage of %s not found", old_name);
}

static void repoint(const char *path, const char *old_parent, const char *old_name,
                    const char *new_parent, const char *new_name)
{
  uint8_t og[16], ng[16];
  data_write_guid(old_parent, og);
  data_write_guid(new_parent, ng);
  struct bytes b = slurp(path);
  repoint_bytes(b, og, old_name, ng, new_name);
  spit(path, b.p, b.len);
  bytes_free(b);
}

Test(badinput_vhdx, parent_loop, .init = setup, .fini = teardown)
{
  create_image(spath("px.vhdx"), VHD_TYPE_DYNAMIC, NULL);
  create_image(spath("pa.vhdx"), VHD_TYPE_DIFFERENCING, spath("px.vhdx"));
  create_image(spath("pb.vhdx"), VHD_TYPE_DIFFERENCING, spath("pa.vhdx"));
  expect_opens(spath("pb.vhdx"), 0);
  repoint(spath("pa.vhdx"), spath("px.vhdx"), "px.vhdx", spath("pb.vhdx"), "pb.vhdx");
  expect_opens(spath("pa.vhdx"), VHD_OPEN_NO_PARENT);
  expect_refused(spath("pa.vhdx"), VHD_FORMAT_VHDX, REFUSE_PROBED | REFUSE_CHAIN);
  expect_refused(spath("pb.vhdx"), VHD_FORMAT_VHDX, REFUSE_PROBED | REFUSE_CHAIN);
}

Test(badinput_vhdx, missing_parent, .init = setup, .fini = teardown)
{
  create_image(spath("mbase.vhdx"), VHD_TYPE_DYNAMIC, NULL);
  create_image(spath("mkid.vhdx"), VHD_TYPE_DIFFERENCING, spath("mbase.vhdx"));
  expect_opens(spath("mkid.vhdx"), 0);
  cr_assert_eq(unlink(spath("mbase.vhdx")), 0);
  expect_opens(spath("mkid.vhdx"), VHD_OPEN_NO_PARENT);
  expect_refused(spath("mkid.vhdx"), VHD_FORMAT_VHDX, REFUSE_PROBED | REFUSE_CHAIN);
  vhd_image *img = NULL;
  cr_assert_lt(vhd_open(spath("mkid.vhdx"), VHD_OPEN_RDONLY, &img), 0);
  cr_assert_not_null(strstr(vhd_last_error(), "mbase.vhdx"),
                     "message does not name the missing parent: %s", vhd_last_error());
}

Test(badinput_vhdx, parent_with_wrong_linkage, .init = setup, .fini = teardown)
{
  create_image(spath("wbase.vhdx"), VHD_TYPE_DYNAMIC, NULL);
  create_image(spath("wkid.vhdx"), VHD_TYPE_DIFFERENCING, spath("wbase.vhdx"));
  expect_opens(spath("wkid.vhdx"), 0);
  cr_assert_eq(unlink(spath("wbase.vhdx")), 0);
  create_image(spath("wbase.vhdx"), VHD_TYPE_DYNAMIC, NULL);
  expect_opens(spath("wkid.vhdx"), VHD_OPEN_NO_PARENT);
  expect_refused(spath("wkid.vhdx"), VHD_FORMAT_VHDX, REFUSE_PROBED | REFUSE_CHAIN);
  vhd_image *img = NULL;
  cr_assert_lt(vhd_open(spath("wkid.vhdx"), VHD_OPEN_RDONLY, &img), 0);
  cr_assert_not_null(strstr(vhd_last_error(), "wbase.vhdx"),
                     "message does not name the parent: %s", vhd_last_error());
}

Test(badinput_vhdx, parent_written_after_child, .init = setup, .fini = teardown)
{
  /* Writing a parent changes its data_write_guid and orphans its children. */
  create_image(spath("obase.vhdx"), VHD_TYPE_DYNAMIC, NULL);
  create_image(spath("okid.vhdx"), VHD_TYPE_DIFFERENCING, spath("obase.vhdx"));
  vhd_image *img = NULL;
  cr_assert_eq(vhd_open(spath("obase.vhdx"), VHD_OPEN_RDWR, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_pwrite(img, "x", 1, 4 * MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0);
  expect_refused(spath("okid.vhdx"), VHD_FORMAT_VHDX, REFUSE_PROBED | REFUSE_CHAIN);
}

/* l00 (base) .. lNN (top): copies of one child, each given its own
 * data_write_guid and pointed at the one below, so the library's depth
 * limit does not stop us from making the chain. */
static const char *make_chain(unsigned images)
{
  static char top[16];
  create_image(spath("l00.vhdx"), VHD_TYPE_DYNAMIC, NULL);
  create_image(spath("l01.vhdx"), VHD_TYPE_DIFFERENCING, spath("l00.vhdx"));
  struct bytes tmpl = slurp(spath("l01.vhdx"));
  uint8_t base_guid[16], below_guid[16];
  data_write_guid(spath("l00.vhdx"), base_guid);
  data_write_guid(spath("l01.vhdx"), below_guid);
  for (unsigned i = 2; i < images; i++) {
    char name[24], below[24];
    snprintf(name, sizeof name, "l%02u.vhdx", i);
    snprintf(below, sizeof below, "l%02u.vhdx", i - 1);
    struct bytes c = bytes_dup(tmpl);
    repoint_bytes(c, base_guid, "l00.vhdx", below_guid, below);
    for (unsigned k = 0; k < 16; k++)
      below_guid[k] = c.p[HEADER1 + 32 + k] = c.p[HEADER2 + 32 + k] = (uint8_t)(0x40 + i * 5 + k);
    fix_crc(c, HEADER1, 4096);
    fix_crc(c, HEADER2, 4096);
    spit(spath(name), c.p, c.len);
    bytes_free(c);
  }
  bytes_free(tmpl);
  snprintf(top, sizeof top, "l%02u.vhdx", images - 1);
  return spath(top);
}

Test(badinput_vhdx, chain_at_depth_limit_opens, .init = setup, .fini = teardown, .timeout = 120)
{
  expect_opens(make_chain(32 + 1), 0);
}

Test(badinput_vhdx, chain_deeper_than_32, .init = setup, .fini = teardown, .timeout = 120)
{
  const char *top = make_chain(32 + 2);
  expect_opens(top, VHD_OPEN_NO_PARENT);
  expect_refused(top, VHD_FORMAT_VHDX, REFUSE_PROBED | REFUSE_CHAIN);
}
