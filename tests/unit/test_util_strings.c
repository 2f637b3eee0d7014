/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the core's string utilities: the freestanding formatter,
 * UTF-16 conversion, path handling and GUID text. libc's snprintf is the
 * oracle for the formatter. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/guid.h"
#include "util/path.h"
#include "util/strfmt.h"
#include "util/utf16.h"
#include "util/zero.h"

#define CHECK_FMT(...)                                   \
  do {                                                   \
    char a[128], b[128];                                 \
    int na = vhd_snprintf(a, sizeof a, __VA_ARGS__);     \
    int nb = snprintf(b, sizeof b, __VA_ARGS__);         \
    cr_assert_str_eq(a, b);                              \
    cr_assert_eq(na, nb);                                \
  } while (0)

Test(strfmt, matches_libc)
{
  CHECK_FMT("plain");
  CHECK_FMT("%s=%d", "x", -42);
  CHECK_FMT("%u %x %X", 4000000000u, 0xdeadbeefu, 0xabcu);
  CHECK_FMT("%llu %lld", 18446744073709551615ULL, -9223372036854775807LL - 1);
  CHECK_FMT("%zu", (size_t)123456789);
  CHECK_FMT("[%5d|%-5d|%05d]", 42, 42, 42);
  CHECK_FMT("[%8s|%-8s|%.3s]", "ab", "ab", "abcdef");
  CHECK_FMT("%c%c 100%%", 'o', 'k');
  CHECK_FMT("%08llx", 0x1234ULL);
}

Test(strfmt, truncates_and_reports_wanted_length)
{
  char buf[8];
  int n = vhd_snprintf(buf, sizeof buf, "%s", "0123456789");
  cr_assert_eq(n, 10);
  cr_assert_str_eq(buf, "0123456");
  cr_assert_eq(vhd_snprintf(NULL, 0, "%d", 12345), 5);
}

Test(utf16, round_trip_both_orders)
{
  const char *s = "dir\\parent-\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80.vhd";
  for (int be = 0; be < 2; be++) {
    uint8_t u[256];
    int n = utf8_to_utf16(s, u, sizeof u, be);
    cr_assert_gt(n, 0);
    /* 'd' is 0x0064: its order in the bytes shows the endianness. */
    cr_assert_eq(u[be ? 1 : 0], 'd');
    cr_assert_eq(u[be ? 0 : 1], 0);
    char *back = utf16_to_utf8(u, (size_t)n, be);
    cr_assert_str_eq(back, s);
    free(back);
  }
}

Test(utf16, lenient_decoding)
{
  /* An unpaired high surrogate, then 'A', then a NUL that ends the name. */
  const uint8_t le[] = { 0x00, 0xD8, 'A', 0, 0, 0, 'B', 0 };
  char *s = utf16_to_utf8(le, sizeof le, false);
  cr_assert_str_eq(s, "\xef\xbf\xbd" "A");
  free(s);
}

Test(utf16, rejects_bad_utf8_and_overflow)
{
  uint8_t u[4];
  cr_assert_eq(utf8_to_utf16("\xff", u, sizeof u, false), -EINVAL);
  cr_assert_eq(utf8_to_utf16("abc", u, sizeof u, false), -ERANGE);
}

Test(path, dirname_basename_join)
{
  char *d = path_dirname("/a/b/c.vhd");
  cr_assert_str_eq(d, "/a/b");
  free(d);
  d = path_dirname("c.vhd");
  cr_assert_str_eq(d, ".");
  free(d);
  d = path_dirname("/c.vhd");
  cr_assert_str_eq(d, "/");
  free(d);
  cr_assert_str_eq(path_basename("/a/b/c.vhd"), "c.vhd");
  char *j = path_join("/a/b", "../p.vhd");
  cr_assert_str_eq(j, "/a/b/../p.vhd");
  free(j);
  j = path_join("/a/b", "/abs.vhd");
  cr_assert_str_eq(j, "/abs.vhd");
  free(j);
}

Test(path, from_stored_windows_and_url_forms)
{
  struct { const char *in; int url; const char *out; } cases[] = {
    { ".\\parent.vhd", 0, "parent.vhd" },
    { "..\\..\\dir\\p.vhd", 0, "../../dir/p.vhd" },
    /* Windows absolute paths name another machine's places: only the
     * file name is kept, to be looked for beside the child. */
    { "C:\\Projects\\p.vhd", 0, "p.vhd" },
    { "\\\\?\\C:\\x\\p.vhdx", 0, "p.vhdx" },
    { "\\\\server\\share\\p.vhd", 0, "p.vhd" },
    { "C:\\", 0, "" },
    /* A Unix tool's absolute path is a host path, with either separator. */
    { "/srv/images/p.vhd", 0, "/srv/images/p.vhd" },
    { "\\srv\\images\\p.vhd", 0, "/srv/images/p.vhd" },
    { "file://localhost/tmp/a%20b.vhd", 1, "/tmp/a b.vhd" },
    { "file:///tmp/p.vhd", 1, "/tmp/p.vhd" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *r = path_from_stored(cases[i].in, cases[i].url);
    cr_assert_str_eq(r, cases[i].out, "case %zu: %s", i, cases[i].in);
    free(r);
  }
}

Test(path, normalize)
{
  struct { const char *in, *out; } cases[] = {
    { "/a/b/../c", "/a/c" },
    { "/a/./b//c/", "/a/b/c" },
    { "/../../etc/passwd", "/etc/passwd" },
    { "/a/b/../../..", "/" },
    { "a/../../b", "../b" },
    { "../../x", "../../x" },
    { "./x/..", "." },
    { "", "." },
    { "a/b/../../../c/../d", "../d" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *r = path_normalize(cases[i].in);
    cr_assert_str_eq(r, cases[i].out, "case %zu: %s", i, cases[i].in);
    free(r);
  }
}

Test(path, within)
{
  cr_assert(path_within("/srv/img", "/srv/img/a.vhd"));
  cr_assert(path_within("/srv/img", "/srv/img/sub/a.vhd"));
  cr_assert(!path_within("/srv/img", "/srv/image/a.vhd"));
  cr_assert(!path_within("/srv/img", "/srv/a.vhd"));
  cr_assert(!path_within("/srv/img", "/etc/passwd"));
  cr_assert(path_within("/", "/etc/passwd"));
  cr_assert(path_within(".", "a.vhd"));
  cr_assert(path_within(".", "sub/a.vhd"));
  cr_assert(!path_within(".", "../a.vhd"));
  cr_assert(!path_within(".", ".."));
  cr_assert(!path_within(".", "/etc/passwd"));
  cr_assert(path_within("imgs", "imgs/a.vhd"));
  /* The directory itself is not in it. */
  cr_assert(!path_within("/srv/img", "/srv/img"));
  cr_assert(!path_within(".", "."));
  cr_assert(!path_within("/", "/"));
  cr_assert(!path_within("imgs", "imgsx/a.vhd"));
}

Test(path, relative)
{
  struct { const char *base, *target, *out; } cases[] = {
    { "/a/b", "/a/b/c.vhd", "./c.vhd" },
    { "/a/b", "/a/c/d.vhd", "../c/d.vhd" },
    { "/a/b", "/a/bc/x.vhd", "../bc/x.vhd" },
    { "/", "/x.vhd", "./x.vhd" },
    { "/a/b/c", "/x.vhd", "../../../x.vhd" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *r = path_relative(cases[i].base, cases[i].target);
    cr_assert_str_eq(r, cases[i].out, "case %zu", i);
    free(r);
  }
}

Test(guid, microsoft_layout_round_trip)
{
  /* The VHDX BAT region GUID and its documented on-disk bytes. */
  const uint8_t bat[16] = { 0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
                            0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08 };
  uint8_t g[16];
  cr_assert(guid_parse_ms("{2DC27766-F623-4200-9D64-115E9BFD4A08}", g));
  cr_assert_arr_eq(g, bat, 16);
  char text[37];
  guid_format_ms(g, text);
  cr_assert_str_eq(text, "2dc27766-f623-4200-9d64-115e9bfd4a08");
  cr_assert(guid_parse_ms("2dc27766-f623-4200-9d64-115e9bfd4a08", g));
  cr_assert_not(guid_parse_ms("{2DC27766-F623-4200-9D64-115E9BFD4A0}", g));
  cr_assert_not(guid_parse_ms("2DC27766F6234200-9D64-115E9BFD4A08", g));
  uuid_format(bat, text);
  cr_assert_str_eq(text, "6677c22d-23f6-0042-9d64-115e9bfd4a08");
}

Test(zero, detects_any_nonzero_byte)
{
  size_t len = 1 << 16;
  unsigned char *b = calloc(1, len);
  cr_assert(buffer_is_zero(b, len));
  cr_assert(buffer_is_zero(b, 0));
  for (size_t pos = 0; pos < len; pos += 997) {
    b[pos] = 1;
    cr_assert_not(buffer_is_zero(b, len), "byte %zu", pos);
    b[pos] = 0;
  }
  b[len - 1] = 0x80;
  cr_assert_not(buffer_is_zero(b, len));
  cr_assert(buffer_is_zero(b, len - 1));
  free(b);
}
