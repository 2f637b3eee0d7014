/* SPDX-License-Identifier: BSD-3-Clause */
/* The VHD footer: byte layout, checksum, geometry and the virtual-size
 * rule (lib/vhd/footer.c).
 *
 * Oracles: a footer written by Windows (its checksum was computed by
 * Windows, its geometry by Windows' CHS code), geometries of images made by
 * Windows and Hyper-V, and the algorithm of the specification's appendix
 * re-expressed here for the round-up property. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "vhd/footer.h"

/* The last 512 bytes of a 3 MiB fixed VHD made by Windows 10
 * (windows-fixed-3m.vhd in the shared image catalogue); bytes 85..511
 * are zero there. */
static const uint8_t windows_fixed_3m[85] = {
  0x63, 0x6f, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x78, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x31, 0xaf, 0xb9, 0x6c, 0x77, 0x69, 0x6e, 0x20,
  0x00, 0x0a, 0x00, 0x00, 0x57, 0x69, 0x32, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x5a, 0x04, 0x11, 0x00, 0x00, 0x00, 0x02,
  0xff, 0xff, 0xe6, 0x00, 0x7e, 0xd7, 0x87, 0x9a, 0x4f, 0xbd, 0x9a, 0x41, 0xb1, 0x6d, 0x95, 0x03,
  0xf2, 0xfb, 0x35, 0xc7, 0x00,
};

static void windows_footer(uint8_t buf[512])
{
  memset(buf, 0, 512);
  memcpy(buf, windows_fixed_3m, sizeof windows_fixed_3m);
}

static uint32_t be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

Test(vhd_footer, checksum_matches_windows)
{
  uint8_t buf[512];
  windows_footer(buf);
  cr_assert_eq(vhd_checksum(buf, 512, 64), 0xffffe600u);
  cr_assert(vhd_footer_checksum_ok(buf, 512));
  /* The same rule over a buffer of our own: ~(sum of bytes). */
  uint8_t mine[512];
  uint32_t sum = 0;
  for (unsigned i = 0; i < sizeof mine; i++) {
    mine[i] = (uint8_t)(i * 37 + 11);
    if (i < 64 || i >= 68)
      sum += mine[i];
  }
  cr_assert_eq(vhd_checksum(mine, sizeof mine, 64), ~sum);
  buf[100] = 1;
  cr_assert_not(vhd_footer_checksum_ok(buf, 512), "a changed reserved byte must count");
}

Test(vhd_footer, decode_windows_footer)
{
  uint8_t buf[512];
  struct vhd_footer f;
  windows_footer(buf);
  vhd_footer_decode(buf, 512, &f);
  cr_assert(vhd_footer_has_cookie(buf));
  cr_assert_eq(f.features, 2u);
  cr_assert_eq(f.version, 0x00010000u);
  cr_assert_eq(f.data_offset, UINT64_MAX);
  cr_assert_eq(f.timestamp, 0x31afb96cu);
  cr_assert_eq(memcmp(f.creator_app, "win ", 4), 0);
  cr_assert_eq(f.creator_version, 0x000a0000u);
  cr_assert_eq(memcmp(f.creator_host, "Wi2k", 4), 0);
  cr_assert_eq(f.original_size, 3u << 20);
  cr_assert_eq(f.current_size, 3u << 20);
  cr_assert_eq(f.cylinders, 90);
  cr_assert_eq(f.heads, 4);
  cr_assert_eq(f.sectors_per_track, 17);
  cr_assert_eq(f.disk_type, 2u);
  cr_assert_eq(f.checksum, 0xffffe600u);
  cr_assert_eq(f.unique_id[0], 0x7e);
  cr_assert_eq(f.unique_id[15], 0xc7);
  cr_assert_eq(f.saved_state, 0);
}

Test(vhd_footer, encode_reproduces_windows_bytes)
{
  uint8_t buf[512], out[512];
  struct vhd_footer f;
  windows_footer(buf);
  vhd_footer_decode(buf, 512, &f);
  memset(out, 0xAA, sizeof out);
  vhd_footer_encode(&f, out);
  cr_assert_eq(memcmp(buf, out, 512), 0);
}

Test(vhd_footer, encode_decode_round_trip)
{
  struct vhd_footer f, g;
  uint8_t buf[512];
  memset(&f, 0, sizeof f);
  memcpy(f.cookie, "conectix", 8);
  f.features = 3;
  f.version = 0x00010000;
  f.data_offset = 0x0123456789abcdefull;
  f.timestamp = 0xfedcba98;
  memcpy(f.creator_app, "tap", 4);
  f.creator_version = 0x00010002;
  memcpy(f.creator_host, "Mac ", 4);
  f.original_size = 0x1122334455667788ull;
  f.current_size = 0x8877665544332211ull;
  f.cylinders = 0xbeef;
  f.heads = 0x12;
  f.sectors_per_track = 0x34;
  f.disk_type = 4;
  for (int i = 0; i < 16; i++)
    f.unique_id[i] = (uint8_t)(0xf0 - i);
  f.saved_state = 1;
  f.reserved[0] = 1;      /* blktap's hidden flag survives a rewrite */
  f.reserved[426] = 0x5a;
  vhd_footer_encode(&f, buf);

  /* Fields where the specification puts them, big-endian. */
  cr_assert_eq(memcmp(buf, "conectix", 8), 0);
  cr_assert_eq(be32(buf + 16), 0x01234567u);
  cr_assert_eq(be32(buf + 20), 0x89abcdefu);
  cr_assert_eq(buf[56], 0xbe);
  cr_assert_eq(buf[57], 0xef);
  cr_assert_eq(buf[58], 0x12);
  cr_assert_eq(buf[59], 0x34);
  cr_assert_eq(be32(buf + 60), 4u);
  cr_assert_eq(buf[84], 1);
  cr_assert_eq(buf[85], 1);
  cr_assert_eq(buf[511], 0x5a);
  uint32_t sum = 0;
  for (int i = 0; i < 512; i++)
    if (i < 64 || i >= 68)
      sum += buf[i];
  cr_assert_eq(be32(buf + 64), ~sum);

  vhd_footer_decode(buf, 512, &g);
  f.checksum = ~sum;
  cr_assert_eq(memcmp(&f, &g, sizeof f), 0);
}

Test(vhd_footer, short_511_byte_footer)
{
  uint8_t buf[512];
  struct vhd_footer a, b;
  windows_footer(buf);
  vhd_footer_decode(buf, 512, &a);
  buf[511] = 0x77;   /* not part of a short footer: must be ignored */
  vhd_footer_decode(buf, 511, &b);
  cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
  cr_assert(vhd_footer_checksum_ok(buf, 511));
}

struct chs_case {
  uint64_t sectors;
  uint16_t c;
  uint8_t h, s;
};

Test(vhd_footer, chs_known_values)
{
  static const struct chs_case cases[] = {
    /* Images made by Windows / Hyper-V (the shared catalogue). */
    { 6144, 90, 4, 17 },             /* 3 MiB fixed, Windows */
    { 8192, 120, 4, 17 },            /* 4 MiB differencing, diskpart */
    { 20480, 301, 4, 17 },           /* 10 MiB, Windows 10 */
    { 266338304, 65278, 16, 255 },   /* 127 GiB, Hyper-V 2012 R2 */
    /* Worked through the appendix algorithm by hand. */
    { 2048, 30, 4, 17 },             /* 17 spt, the 4-head minimum */
    { 204800, 1003, 12, 17 },        /* 17 spt with 12 heads */
    { 409600, 825, 16, 31 },         /* more than 16 heads at 17 spt: 31 */
    { 2097152, 2080, 16, 63 },       /* 1 GiB: 63 spt (qemu shows 2080/16/63) */
    { 66059280, 16191, 16, 255 },    /* exactly 65535*16*63: 255 spt */
    { 65535ull * 16 * 255, 65535, 16, 255 },
    { 1ull << 32, 65535, 16, 255 },  /* saturates at the maximum */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint16_t c;
    uint8_t h, s;
    vhd_chs_from_sectors(cases[i].sectors, &c, &h, &s);
    cr_expect(c == cases[i].c && h == cases[i].h && s == cases[i].s,
              "%llu sectors: got %u/%u/%u, want %u/%u/%u",
              (unsigned long long)cases[i].sectors, c, h, s, cases[i].c, cases[i].h, cases[i].s);
  }
}

/* The geometry never claims more sectors than the disk has. */
Test(vhd_footer, chs_never_exceeds_size)
{
  for (uint64_t n = 1; n < 300000; n += 97) {
    uint16_t c;
    uint8_t h, s;
    vhd_chs_from_sectors(n, &c, &h, &s);
    cr_assert_leq(vhd_chs_product(c, h, s), n, "%llu sectors", (unsigned long long)n);
  }
}

static bool is_fixed_point(uint64_t n)
{
  uint16_t c;
  uint8_t h, s;
  vhd_chs_from_sectors(n, &c, &h, &s);
  return vhd_chs_product(c, h, s) == n;
}

Test(vhd_footer, chs_round_up)
{
  /* Including 69567 sectors, where the first product reached (69615)
   * maps back to a smaller geometry: the result must be reproducible. */
  static const uint64_t sizes[] = { 1, 17, 2048, 20000, 69567, 69588, 204801,
                                    2097152, 4194303, 66059279, 100000000 };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    uint64_t n = sizes[i], r = vhd_chs_round_up(n);
    cr_assert_geq(r, n);
    cr_assert(is_fixed_point(r), "%llu -> %llu does not reproduce its geometry",
              (unsigned long long)n, (unsigned long long)r);
    for (uint64_t m = n; m < r; m++)
      cr_assert_not(is_fixed_point(m), "%llu -> %llu, but %llu is smaller and exact",
                    (unsigned long long)n, (unsigned long long)r, (unsigned long long)m);
  }
  /* At and past the maximum geometry nothing can be rounded. */
  cr_assert_eq(vhd_chs_round_up(65535ull * 16 * 255 + 5), 65535ull * 16 * 255 + 5);
}

static struct vhd_footer footer_of(const char app[4], uint64_t size, uint16_t c, uint8_t h,
                                   uint8_t s)
{
  struct vhd_footer f;
  memset(&f, 0, sizeof f);
  memcpy(f.creator_app, app, 4);
  f.current_size = size;
  f.cylinders = c;
  f.heads = h;
  f.sectors_per_track = s;
  return f;
}

Test(vhd_footer, virtual_size_rule)
{
  /* The Virtual PC image of the catalogue: qemu and Virtual PC see the CHS
   * product, 136363130880 bytes. */
  struct vhd_footer f = footer_of("vpc ", 136365211648ull, 65278, 16, 255);
  cr_assert_eq(vhd_footer_virtual_size(&f), 136363130880ull);
  f = footer_of("qemu", 4212736, 121, 4, 17);
  cr_assert_eq(vhd_footer_virtual_size(&f), 4212736u);
  /* Everybody else: current_size. */
  f = footer_of("win ", 136365211648ull, 65278, 16, 255);
  cr_assert_eq(vhd_footer_virtual_size(&f), 136365211648ull);
  f = footer_of("d2v\0", 263454720, 65535, 16, 255);
  cr_assert_eq(vhd_footer_virtual_size(&f), 263454720u);
  f = footer_of("vs  ", 10485760, 301, 4, 17);
  cr_assert_eq(vhd_footer_virtual_size(&f), 10485760u);
  f = footer_of("wa\0\0", 10485760, 301, 4, 17);
  cr_assert_eq(vhd_footer_virtual_size(&f), 10485760u);
  /* The saturated geometry says nothing about the size. */
  f = footer_of("vpc ", 200ull << 30, 65535, 16, 255);
  cr_assert_eq(vhd_footer_virtual_size(&f), 200ull << 30);
  /* Nor does an empty one. */
  f = footer_of("vpc ", 1 << 20, 0, 0, 0);
  cr_assert_eq(vhd_footer_virtual_size(&f), 1u << 20);
}

Test(vhd_footer, creator_description)
{
  char out[64];
  struct vhd_footer f = footer_of("win ", 0, 0, 0, 0);
  f.creator_version = 0x000a0000;
  memcpy(f.creator_host, "Wi2k", 4);
  vhd_creator_describe(&f, out, sizeof out);
  cr_assert_str_eq(out, "win 10.0 (Wi2k)");
  f = footer_of("d2v\0", 0, 0, 0, 0);
  f.creator_version = 0x00010000;
  memcpy(f.creator_host, "Wi2k", 4);
  vhd_creator_describe(&f, out, sizeof out);
  cr_assert_str_eq(out, "d2v 1.0 (Wi2k)");
  f = footer_of("a\x01z ", 0, 0, 0, 0);
  f.creator_version = 0x00050003;
  memcpy(f.creator_host, "Mac ", 4);
  vhd_creator_describe(&f, out, sizeof out);
  cr_assert_str_eq(out, "a?z 5.3 (Mac)");
}
