/* SPDX-License-Identifier: BSD-3-Clause */
/* CRC-32C, both implementations, against published check values (the
 * catalogue check value and the iSCSI vectors of RFC 3720 B.4) and against
 * a bit-at-a-time reference on random buffers of every alignment. */
#include "test_vhdx_util.h"
#include "vhdx/vhdx.h"

static uint32_t sw(const void *p, size_t n) { return ~vhdx_crc32c_sw(0xFFFFFFFFu, p, n); }
static uint32_t hw(const void *p, size_t n) { return ~vhdx_crc32c_hw(0xFFFFFFFFu, p, n); }

struct vector {
  const char *name;
  uint8_t data[48];
  size_t len;
  uint32_t crc;
};

static struct vector vectors(int i)
{
  struct vector v;
  memset(&v, 0, sizeof v);
  switch (i) {
  case 0:
    v.name = "\"123456789\"";
    memcpy(v.data, "123456789", 9);
    v.len = 9;
    v.crc = 0xE3069283u;
    break;
  case 1:
    v.name = "32 zero bytes";
    v.len = 32;
    v.crc = 0x8A9136AAu;
    break;
  case 2:
    v.name = "32 bytes of 0xFF";
    memset(v.data, 0xFF, 32);
    v.len = 32;
    v.crc = 0x62A8AB43u;
    break;
  case 3:
    v.name = "bytes 0..31";
    for (int k = 0; k < 32; k++)
      v.data[k] = (uint8_t)k;
    v.len = 32;
    v.crc = 0x46DD794Eu;
    break;
  case 4:
    v.name = "bytes 31..0";
    for (int k = 0; k < 32; k++)
      v.data[k] = (uint8_t)(31 - k);
    v.len = 32;
    v.crc = 0x113FDB5Cu;
    break;
  default:
    v.name = NULL;
  }
  return v;
}

Test(vhdx_crc32c, check_values_software)
{
  for (int i = 0; vectors(i).name; i++) {
    struct vector v = vectors(i);
    cr_expect_eq(sw(v.data, v.len), v.crc, "software CRC-32C of %s: %08x, want %08x", v.name,
                 sw(v.data, v.len), v.crc);
    cr_expect_eq(tv_crc32c(v.data, v.len), v.crc, "reference CRC of %s is wrong", v.name);
  }
}

Test(vhdx_crc32c, check_values_hardware)
{
  if (!vhdx_crc32c_hw_available())
    cr_skip_test("this CPU has no SSE4.2 CRC32 instruction");
  for (int i = 0; vectors(i).name; i++) {
    struct vector v = vectors(i);
    cr_expect_eq(hw(v.data, v.len), v.crc, "hardware CRC-32C of %s: %08x, want %08x", v.name,
                 hw(v.data, v.len), v.crc);
  }
}

Test(vhdx_crc32c, public_entry_point)
{
  cr_assert_eq(vhdx_crc32c("123456789", 9), 0xE3069283u);
  cr_assert_eq(vhdx_crc32c("", 0), 0u);
}

/* Every length up to 300 at every start alignment modulo 8, and a few
 * large buffers, against the bit-at-a-time reference. */
Test(vhdx_crc32c, random_buffers_match_reference)
{
  size_t cap = 70000;
  uint8_t *buf = malloc(cap + 8);
  cr_assert_not_null(buf);
  for (size_t i = 0; i < cap + 8; i++)
    buf[i] = (uint8_t)tv_rnd();
  bool have_hw = vhdx_crc32c_hw_available();
  for (size_t align = 0; align < 8; align++)
    for (size_t n = 0; n <= 300; n++) {
      uint32_t want = tv_crc32c(buf + align, n);
      cr_assert_eq(sw(buf + align, n), want, "software, %zu bytes at +%zu", n, align);
      if (have_hw)
        cr_assert_eq(hw(buf + align, n), want, "hardware, %zu bytes at +%zu", n, align);
    }
  size_t sizes[] = { 4096, 4096 * 3 + 5, 65536, cap };
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    uint32_t want = tv_crc32c(buf + 3, sizes[k]);
    cr_assert_eq(sw(buf + 3, sizes[k]), want);
    if (have_hw)
      cr_assert_eq(hw(buf + 3, sizes[k]), want);
  }
  free(buf);
}

/* A running CRC over pieces equals the CRC of the whole. */
Test(vhdx_crc32c, incremental_equals_whole)
{
  uint8_t buf[1000];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t)(i * 7 + 3);
  uint32_t c = 0xFFFFFFFFu;
  c = vhdx_crc32c_update(c, buf, 13);
  c = vhdx_crc32c_update(c, buf + 13, 500);
  c = vhdx_crc32c_update(c, buf + 513, sizeof buf - 513);
  cr_assert_eq(~c, tv_crc32c(buf, sizeof buf));
}

/* The structure checksum treats its own field as zero. */
Test(vhdx_crc32c, checksum_field_reads_as_zero)
{
  uint8_t buf[4096];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t)tv_rnd();
  uint8_t copy[4096];
  memcpy(copy, buf, sizeof copy);
  memset(copy + 4, 0, 4);
  cr_assert_eq(vhdx_checksum(buf, sizeof buf, 4), tv_crc32c(copy, sizeof copy));
}
