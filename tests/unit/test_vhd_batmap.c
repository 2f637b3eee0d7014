/* SPDX-License-Identifier: BSD-3-Clause */
/* blktap's batmap (a "tdbatmap" header and a bit map right after the BAT of
 * images whose creator is "tap"): libvhd never trusts it, but it must not
 * overwrite it, must not call it leaked space, and must disable it (zero
 * its cookie, as blktap does) before freeing any block it might claim. The
 * image is built by hand from a vhdtool-made one, since no peer here writes
 * blktap images. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd.h"

#define MiB (1024u * 1024u)

static char path[256];

static void put_be32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static uint32_t be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Footer checksum: one's complement of the byte sum, checksum field zero. */
static void footer_as_tap(uint8_t *f)
{
  memcpy(f + 28, "tap ", 4);
  put_be32(f + 32, 0x00010003);
  put_be32(f + 64, 0);
  uint32_t sum = 0;
  for (int i = 0; i < 512; i++)
    sum += f[i];
  put_be32(f + 64, ~sum);
}

static uint8_t *slurp(size_t *len)
{
  FILE *fp = fopen(path, "rb");
  cr_assert_not_null(fp);
  fseek(fp, 0, SEEK_END);
  *len = (size_t)ftell(fp);
  fseek(fp, 0, SEEK_SET);
  uint8_t *b = malloc(*len);
  cr_assert_eq(fread(b, 1, *len, fp), *len);
  fclose(fp);
  return b;
}

static void spill(const uint8_t *b, size_t len)
{
  FILE *fp = fopen(path, "wb");
  cr_assert_not_null(fp);
  cr_assert_eq(fwrite(b, 1, len, fp), len);
  cr_assert_eq(fclose(fp), 0);
}

static void check_clean(const char *when)
{
  struct vhd_check_result res;
  cr_assert_eq(vhd_check(path, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.corruptions, 0, "%s: corruptions", when);
  cr_expect_eq(res.leaks, 0, "%s: the batmap was counted as leaked space", when);
}

/* Returns the batmap header's offset. */
static uint64_t make_tap_image(void)
{
  const char *t = getenv("TMPDIR");
  snprintf(path, sizeof path, "%s/batmap-%d.vhd", t && *t ? t : "/tmp", (int)getpid());
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.size = 16 * MiB;
  p.block_size = 2 * MiB;
  p.flags = VHD_CREATE_OVERWRITE;
  cr_assert_eq(vhd_create(path, &p, NULL), 0, "%s", vhd_last_error());

  size_t len;
  uint8_t *old = slurp(&len);
  /* Empty dynamic image: copy, header, BAT (padded to a sector), footer. */
  uint64_t bat = (uint64_t)be32(old + 512 + 16) << 32 | be32(old + 512 + 20);
  uint64_t bat_end = bat + 512;
  cr_assert_eq(bat_end, len - 512, "unexpected layout of a new image");

  size_t nlen = bat_end + 512 + 512 + 512;
  uint8_t *img = calloc(1, nlen);
  memcpy(img, old, bat_end);
  uint8_t *hdr = img + bat_end;
  memcpy(hdr, "tdbatmap", 8);
  put_be32(hdr + 8, 0);
  put_be32(hdr + 12, (uint32_t)(bat_end + 512));  /* the map, one sector */
  put_be32(hdr + 16, 1);
  put_be32(hdr + 20, 0x00010002);
  put_be32(hdr + 24, 0xffffffffu);                  /* ~sum of an all-zero map */
  memset(img + bat_end + 512, 0, 512);
  memcpy(img + nlen - 512, old + len - 512, 512);
  footer_as_tap(img);
  footer_as_tap(img + nlen - 512);
  spill(img, nlen);
  free(old);
  free(img);
  return bat_end;
}

Test(batmap, kept_while_writing_and_disabled_before_a_free)
{
  uint64_t at = make_tap_image();
  check_clean("hand-made tap image");

  vhd_image *img;
  uint8_t buf[4096], back[4096];
  memset(buf, 0xab, sizeof buf);
  cr_assert_eq(vhd_open(path, VHD_OPEN_RDWR, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 0), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0);

  size_t len;
  uint8_t *f = slurp(&len);
  cr_expect_eq(memcmp(f + at, "tdbatmap", 8), 0, "the batmap header was overwritten");
  uint64_t blk0 = (uint64_t)be32(f + 512 + 16) << 32 | be32(f + 512 + 20);
  blk0 = (uint64_t)be32(f + blk0) * 512;
  cr_expect_geq(blk0, at + 1024, "a new block was placed over the batmap");
  free(f);
  check_clean("after an allocating write");

  cr_assert_eq(vhd_open(path, VHD_OPEN_RDWR, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_discard(img, 0, 2 * MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_pread(img, back, sizeof back, 0), 0);
  memset(buf, 0, sizeof buf);
  cr_expect_eq(memcmp(back, buf, sizeof back), 0, "the freed block does not read zeros");
  cr_assert_eq(vhd_close(img), 0);

  f = slurp(&len);
  static const uint8_t zero8[8];
  cr_expect_eq(memcmp(f + at, zero8, 8), 0, "freeing a block left the batmap cookie valid");
  cr_expect_eq(be32(f + at + 16), 1, "more than the cookie of the batmap header changed");
  free(f);
  check_clean("after a free");
  unlink(path);
}

Test(batmap, a_longer_bat_replaces_it_safely)
{
  make_tap_image();
  vhd_image *img;
  uint8_t buf[4096], back[4096];
  memset(buf, 0x5a, sizeof buf);
  cr_assert_eq(vhd_open(path, VHD_OPEN_RDWR, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 4 * MiB), 0, "%s", vhd_last_error());
  /* 1 GiB needs 512 entries: the BAT grows over the batmap. */
  cr_assert_eq(vhd_resize(img, 1024ull * MiB, 0, NULL, NULL), 0, "%s", vhd_last_error());
  /* Freeing a block afterwards must not write a cookie into the BAT. */
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 0), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_discard(img, 0, 2 * MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  check_clean("after growing the BAT over the batmap");

  cr_assert_eq(vhd_open(path, VHD_OPEN_RDONLY, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_pread(img, back, sizeof back, 4 * MiB), 0, "%s", vhd_last_error());
  cr_expect_eq(memcmp(back, buf, sizeof back), 0, "data moved by the resize was lost");
  cr_assert_eq(vhd_pread(img, back, sizeof back, 0), 0, "%s", vhd_last_error());
  memset(buf, 0, sizeof buf);
  cr_expect_eq(memcmp(back, buf, sizeof back), 0, "the freed block does not read zeros");
  vhd_close(img);
  unlink(path);
}
