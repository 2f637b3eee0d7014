/* SPDX-License-Identifier: BSD-3-Clause */
/* The dynamic disk header and parent locators (lib/vhd/dyn_header.c,
 * vhd_parent.c, the locator part of vhd_create.c).
 *
 * Oracle: the header of a differencing VHD made by Windows diskpart
 * (dfvfs-fat-differential.vhd in the shared catalogue), whose locators
 * store data_space as bytes, and the specification's layout read here with
 * our own byte helpers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "image.h"
#include "vhd.h"
#include "vhd/dyn_header.h"
#include "vhd/footer.h"

static uint32_t be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static void put_be32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }
static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

/* Non-zero rows (16 bytes, offset in the header) of the diskpart header. */
static const struct { unsigned off; uint8_t b[16]; } diskpart_rows[] = {
  { 0x000, { 0x63,0x78,0x73,0x70,0x61,0x72,0x73,0x65,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff } },
  { 0x010, { 0x00,0x00,0x00,0x00,0x00,0x00,0x20,0x00,0x00,0x01,0x00,0x00,0x00,0x00,0x00,0x02 } },
  { 0x020, { 0x00,0x20,0x00,0x00,0xff,0xff,0xd9,0x51,0x5f,0xa2,0x1a,0x55,0xf3,0x94,0xaa,0x4d } },
  { 0x030, { 0x99,0x58,0x19,0x51,0xa6,0x7d,0x55,0x40,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00 } },
  { 0x040, { 0x00,0x43,0x00,0x3a,0x00,0x5c,0x00,0x50,0x00,0x72,0x00,0x6f,0x00,0x6a,0x00,0x65 } },
  { 0x050, { 0x00,0x63,0x00,0x74,0x00,0x73,0x00,0x5c,0x00,0x64,0x00,0x66,0x00,0x76,0x00,0x66 } },
  { 0x060, { 0x00,0x73,0x00,0x5c,0x00,0x74,0x00,0x65,0x00,0x73,0x00,0x74,0x00,0x5f,0x00,0x64 } },
  { 0x070, { 0x00,0x61,0x00,0x74,0x00,0x61,0x00,0x5c,0x00,0x66,0x00,0x61,0x00,0x74,0x00,0x2d } },
  { 0x080, { 0x00,0x70,0x00,0x61,0x00,0x72,0x00,0x65,0x00,0x6e,0x00,0x74,0x00,0x2e,0x00,0x76 } },
  { 0x090, { 0x00,0x68,0x00,0x64,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00 } },
  { 0x240, { 0x57,0x32,0x6b,0x75,0x00,0x00,0x10,0x00,0x00,0x00,0x00,0x54,0x00,0x00,0x00,0x00 } },
  { 0x250, { 0x00,0x00,0x00,0x00,0x00,0x00,0x10,0x00,0x57,0x32,0x72,0x75,0x00,0x01,0x00,0x00 } },
  { 0x260, { 0x00,0x00,0x00,0x20,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x30,0x00 } },
};

static void diskpart_header(uint8_t buf[1024])
{
  memset(buf, 0, 1024);
  for (size_t i = 0; i < sizeof diskpart_rows / sizeof diskpart_rows[0]; i++)
    memcpy(buf + diskpart_rows[i].off, diskpart_rows[i].b, 16);
}

/* UTF-16LE of an ASCII string into dst; returns the byte count. */
static size_t put_utf16le(uint8_t *dst, const char *s)
{
  size_t n = 0;
  for (; *s; s++, n += 2) {
    dst[n] = (uint8_t)*s;
    dst[n + 1] = 0;
  }
  return n;
}

Test(vhd_header, decode_diskpart_header)
{
  uint8_t buf[1024];
  struct vhd_dyn_header h;
  diskpart_header(buf);
  cr_assert(vhd_header_checksum_ok(buf), "diskpart's checksum must verify");
  vhd_header_decode(buf, &h);
  cr_assert_eq(memcmp(h.cookie, "cxsparse", 8), 0);
  cr_assert_eq(h.data_offset, UINT64_MAX);
  cr_assert_eq(h.table_offset, 0x2000u);
  cr_assert_eq(h.version, 0x00010000u);
  cr_assert_eq(h.max_table_entries, 2u);
  cr_assert_eq(h.block_size, 2u << 20);
  cr_assert_eq(h.checksum, 0xffffd951u);
  cr_assert_eq(h.parent_unique_id[0], 0x5f);
  cr_assert_eq(h.parent_unique_id[15], 0x40);
  cr_assert_eq(h.loc[0].code, VHD_LOC_W2KU);
  cr_assert_eq(h.loc[0].data_space, 0x1000u);
  cr_assert_eq(h.loc[0].data_length, 0x54u);
  cr_assert_eq(h.loc[0].data_offset, 0x1000u);
  cr_assert_eq(h.loc[1].code, VHD_LOC_W2RU);
  cr_assert_eq(h.loc[1].data_space, 0x10000u);
  cr_assert_eq(h.loc[1].data_length, 0x20u);
  cr_assert_eq(h.loc[1].data_offset, 0x3000u);
  for (int i = 2; i < 8; i++)
    cr_assert_eq(h.loc[i].code, 0u);

  uint8_t out[1024];
  vhd_header_encode(&h, out);
  cr_assert_eq(memcmp(buf, out, sizeof out), 0, "re-encoding changes the header");
}

Test(vhd_header, locator_data_space_units)
{
  uint64_t bytes;
  /* Spec: sectors. Virtual PC / Hyper-V / diskpart: bytes. */
  cr_assert(vhd_locator_space_bytes(1, &bytes));
  cr_assert_eq(bytes, 512u);
  cr_assert(vhd_locator_space_bytes(511, &bytes));
  cr_assert_eq(bytes, 511u * 512);
  cr_assert(vhd_locator_space_bytes(512, &bytes));
  cr_assert_eq(bytes, 512u);
  cr_assert(vhd_locator_space_bytes(0x1000, &bytes));
  cr_assert_eq(bytes, 4096u);
  cr_assert(vhd_locator_space_bytes(0x10000, &bytes));
  cr_assert_eq(bytes, 65536u);
  cr_assert(vhd_locator_space_bytes(0, &bytes));
  cr_assert_eq(bytes, 0u);
  cr_assert_not(vhd_locator_space_bytes(513, &bytes));
  cr_assert_not(vhd_locator_space_bytes(0x1001, &bytes));
}

Test(vhd_header, locator_payload_decoding)
{
  uint8_t buf[256];
  memset(buf, 0, sizeof buf);
  size_t n = put_utf16le(buf, ".\\fat-parent.vhd");
  /* Trailing NULs (padding up to data_length) are dropped. */
  char *s = vhd_locator_decode(VHD_LOC_W2RU, buf, n + 6);
  cr_assert_str_eq(s, ".\\fat-parent.vhd");
  free(s);
  /* An odd length cannot split a UTF-16 unit. */
  s = vhd_locator_decode(VHD_LOC_W2KU, buf, 5);
  cr_assert_str_eq(s, ".\\");
  free(s);
  const char *url = "file://localhost/a%20b/p.vhd";
  s = vhd_locator_decode(VHD_LOC_MACX, (const uint8_t *)url, strlen(url));
  cr_assert_str_eq(s, url);
  free(s);
  const uint8_t ansi[] = { 'C', ':', '\\', 0xe9, '.', 'v', 'h', 'd', 0, 0 };
  s = vhd_locator_decode(VHD_LOC_WI2K, ansi, sizeof ansi);
  cr_assert_str_eq(s, "C:\\\xc3\xa9.vhd");
  free(s);

  uint8_t enc[64];
  int r = vhd_locator_encode(VHD_LOC_W2RU, ".\\p\xc3\xa9.vhd", enc, sizeof enc);
  cr_assert_eq(r, 16);
  cr_assert_eq(le16(enc), '.');
  cr_assert_eq(le16(enc + 6), 0xe9);
  cr_assert_lt(vhd_locator_encode(VHD_LOC_W2RU, ".\\long-name.vhd", enc, 8), 0);
}

/* A differencing VHD in memory around the diskpart header: footer copy,
 * header, W2ku payload at 0x1000, BAT at 0x2000, W2ru payload at 0x3000
 * (data_space 64 KiB), footer. */
static vhd_io *diskpart_child(size_t *len_out)
{
  size_t len = 0x3000 + 0x10000 + 512;
  uint8_t *file = calloc(1, len);
  uint8_t footer[512];
  cr_assert_not_null(file);
  diskpart_header(file + 512);
  put_utf16le(file + 0x1000, "C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd");
  memset(file + 0x2000, 0xff, 512);
  put_utf16le(file + 0x3000, ".\\fat-parent.vhd");

  memset(footer, 0, sizeof footer);
  memcpy(footer, "conectix", 8);
  put_be32(footer + 8, 2);
  put_be32(footer + 12, 0x00010000);
  put_be64(footer + 16, 512);
  memcpy(footer + 28, "win ", 4);
  put_be32(footer + 32, 0x000a0000);
  memcpy(footer + 36, "Wi2k", 4);
  put_be64(footer + 40, 4u << 20);
  put_be64(footer + 48, 4u << 20);
  footer[56] = 0; footer[57] = 120; footer[58] = 4; footer[59] = 17;
  put_be32(footer + 60, 4);
  put_be32(footer + 64, vhd_checksum(footer, 512, 64));
  memcpy(file, footer, 512);
  memcpy(file + len - 512, footer, 512);

  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(file, len, "diskpart-child.vhd", VHD_IO_RDONLY, &io), 0);
  free(file);
  if (len_out)
    *len_out = len;
  return io;
}

Test(vhd_header, parent_candidates_from_diskpart_locators)
{
  vhd_image *img;
  cr_assert_eq(vhd_open_io(diskpart_child(NULL), VHD_FORMAT_VHD, VHD_OPEN_NO_PARENT, &img), 0,
               "%s", vhd_last_error());
  struct vhd_info info;
  cr_assert_eq(vhd_get_info(img, &info), 0);
  cr_assert_eq(info.type, VHD_TYPE_DIFFERENCING);
  cr_assert_eq(info.virtual_size, 4u << 20);
  cr_assert_str_eq(info.parent_hint, ".\\fat-parent.vhd");
  cr_assert_eq(info.parent_id[0], 0x5f);
  cr_assert_eq(info.cylinders, 120);

  struct parent_candidates c;
  cr_assert_eq(img->drv->parent_candidates(img, &c), 0);
  /* W2ru first. W2ku is a Windows absolute path (C:\Projects\...), which
   * names a place on another machine: only its file name is kept, the
   * same file as the W2ru one, as is the parent name's, so neither is
   * repeated. */
  cr_assert_eq(c.count, 1u);
  cr_assert_str_eq(c.path[0], "fat-parent.vhd");
  cr_assert_str_eq(c.kind[0], "W2ru");
  parent_candidates_free(&c);
  vhd_close(img);

  /* Without a parent, reads of parent-backed data fail clearly. */
  cr_assert_eq(vhd_open_io(diskpart_child(NULL), VHD_FORMAT_VHD, VHD_OPEN_NO_PARENT, &img), 0);
  uint8_t sector[512];
  cr_assert_eq(vhd_pread(img, sector, sizeof sector, 0), -ENXIO);
  vhd_close(img);
}

/* The same file with the locator data_space given in sectors, as the
 * specification says: it must open the same way. */
Test(vhd_header, locator_space_in_sectors)
{
  size_t len;
  vhd_io *io = diskpart_child(&len);
  void *data;
  size_t size;
  cr_assert_eq(vhd_io_memory_contents(io, &data, &size), 0);
  vhd_io_close(io);
  uint8_t *h = (uint8_t *)data + 512;
  put_be32(h + 576 + 4, 8);          /* W2ku: 8 sectors = 4096 bytes */
  put_be32(h + 576 + 24 + 4, 128);   /* W2ru: 128 sectors = 64 KiB */
  put_be32(h + 36, vhd_checksum(h, 1024, 36));
  cr_assert_eq(vhd_io_new_memory(data, size, "sectors.vhd", VHD_IO_RDONLY, &io), 0);
  free(data);
  vhd_image *img;
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_VHD, VHD_OPEN_NO_PARENT, &img), 0, "%s",
               vhd_last_error());
  struct parent_candidates c;
  cr_assert_eq(img->drv->parent_candidates(img, &c), 0);
  cr_assert_eq(c.count, 1u);   /* as above: W2ku adds nothing new */
  parent_candidates_free(&c);
  vhd_close(img);

  /* A data_space that is neither is a corruption. */
  cr_assert_eq(vhd_io_memory_contents(io = diskpart_child(&len), &data, &size), 0);
  vhd_io_close(io);
  h = (uint8_t *)data + 512;
  put_be32(h + 576 + 4, 0x1001);
  put_be32(h + 36, vhd_checksum(h, 1024, 36));
  cr_assert_eq(vhd_io_new_memory(data, size, "bad-space.vhd", VHD_IO_RDONLY, &io), 0);
  free(data);
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_VHD, VHD_OPEN_NO_PARENT, &img), -EINVAL);
  cr_assert_not_null(strstr(vhd_last_error(), "platform_data_space"), "%s", vhd_last_error());
  cr_assert_not_null(strstr(vhd_last_error(), "bad-space.vhd"), "%s", vhd_last_error());
}

/* A locator payload past the end of the file is refused with a message
 * that names the locator. */
Test(vhd_header, locator_past_eof)
{
  vhd_io *io = diskpart_child(NULL);
  void *data;
  size_t size;
  cr_assert_eq(vhd_io_memory_contents(io, &data, &size), 0);
  vhd_io_close(io);
  uint8_t *h = (uint8_t *)data + 512;
  put_be64(h + 576 + 24 + 16, size - 16);   /* W2ru payload runs over the end */
  put_be32(h + 36, vhd_checksum(h, 1024, 36));
  cr_assert_eq(vhd_io_new_memory(data, size, "loc-eof.vhd", VHD_IO_RDONLY, &io), 0);
  free(data);
  vhd_image *img;
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_VHD, VHD_OPEN_NO_PARENT, &img), -EINVAL);
  cr_assert_not_null(strstr(vhd_last_error(), "parent locator 1"), "%s", vhd_last_error());
}

/* What create writes for a differencing image, read back byte by byte. */
Test(vhd_header, create_differencing_layout)
{
  struct vhd_create_params p;
  vhd_io *pio, *cio;
  vhd_image *parent;

  vhd_create_params_init(&p);
  p.size = 5u << 20;
  p.block_size = 1u << 20;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "/images/dir/parent.vhd", VHD_IO_RDWR, &pio), 0);
  cr_assert_eq(vhd_create_io(pio, &p, &parent), 0, "%s", vhd_last_error());

  struct parent_link link = { parent, "../dir/parent.vhd", "/images/dir/parent.vhd" };
  p.type = VHD_TYPE_DIFFERENCING;
  p.size = 0;
  p.parent = "parent.vhd";
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "/images/other/child.vhd", VHD_IO_RDWR, &cio), 0);
  cr_assert_eq(vhd_driver_vhd.create(cio, &p, &link), 0, "%s", vhd_last_error());
  void *data;
  size_t len;
  cr_assert_eq(vhd_io_memory_contents(cio, &data, &len), 0);
  vhd_io_close(cio);
  const uint8_t *f = (const uint8_t *)data + len - 512, *h = (const uint8_t *)data + 512;

  /* Footer: differencing, the parent's size, a copy at offset 0. */
  cr_assert_eq(be32(f + 60), 4u);
  cr_assert_eq(be64(f + 48), 5u << 20);
  cr_assert_eq(memcmp(data, f, 512), 0);
  /* Identity: the parent's footer unique id and timestamp. */
  void *pdata;
  size_t plen;
  cr_assert_eq(vhd_io_memory_contents(parent->io, &pdata, &plen), 0);
  const uint8_t *pf = (const uint8_t *)pdata + plen - 512;
  cr_assert_eq(memcmp(h + 40, pf + 68, 16), 0, "parent_unique_id is not the parent's unique_id");
  cr_assert_eq(be32(h + 56), be32(pf + 24));
  /* parent_unicode_name: the basename, UTF-16BE. */
  const char *name = "parent.vhd";
  for (size_t i = 0; i < strlen(name); i++)
    cr_assert(h[64 + 2 * i] == 0 && h[65 + 2 * i] == (uint8_t)name[i]);
  cr_assert(h[64 + 2 * strlen(name)] == 0 && h[65 + 2 * strlen(name)] == 0);

  /* Locators: W2ru, W2ku, MacX, after the BAT, in whole sectors. */
  static const struct { uint32_t code; const char *text; bool utf16; } want[] = {
    { 0x57327275, "..\\dir\\parent.vhd", true },
    { 0x57326b75, "\\images\\dir\\parent.vhd", true },
    { 0x4d616358, "file:///images/dir/parent.vhd", false },
  };
  uint64_t table = be64(h + 16), entries = be32(h + 28);
  uint64_t prev_end = table + (entries * 4 + 511) / 512 * 512;
  for (int i = 0; i < 3; i++) {
    const uint8_t *e = h + 576 + 24 * i;
    uint32_t space = be32(e + 4), length = be32(e + 8);
    uint64_t off = be64(e + 16);
    cr_assert_eq(be32(e), want[i].code, "locator %d", i);
    cr_assert_eq(space % 512, 0u, "data_space %u is not a byte count in sectors", space);
    cr_assert_geq(space, length);
    cr_assert_eq(off, prev_end, "locator %d is not right after the previous structure", i);
    prev_end = off + space;
    const uint8_t *payload = (const uint8_t *)data + off;
    size_t n = strlen(want[i].text);
    if (want[i].utf16) {
      cr_assert_eq(length, 2 * n);
      for (size_t k = 0; k < n; k++)
        cr_assert_eq(le16(payload + 2 * k), (uint8_t)want[i].text[k], "locator %d char %zu", i, k);
    } else {
      cr_assert_eq(length, n);
      cr_assert_eq(memcmp(payload, want[i].text, n), 0);
    }
  }
  cr_assert_eq(be32(h + 576 + 24 * 3), 0u);
  cr_assert_eq(prev_end, len - 512, "the footer does not follow the locators");
  cr_assert(vhd_header_checksum_ok(h));
  free(data);
  free(pdata);
  vhd_close(parent);
}
