/* SPDX-License-Identifier: BSD-3-Clause */
/* set-parent is crash-safe: the driver's set_parent runs on a recording
 * backend (fakeio.h), and the file as it stood after every prefix of its
 * writes must open and check without corruption, naming either the old
 * parent or the new one - never a mix - and the last one the new. VHD with
 * locators that must grow (written past the end, footer moved first) and
 * VHDX (the locator item through the log). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "fakeio.h"
#include "image.h"
#include "vhd.h"

#define MiB (1024u * 1024u)

static char dir[4096];

static void make(const char *name, const char *parent, enum vhd_format fmt, char fill)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.size = parent ? 0 : 4 * MiB;
  p.block_size = fmt == VHD_FORMAT_VHD ? 512 * 1024 : MiB;
  if (parent) {
    static char pp[4200];
    snprintf(pp, sizeof pp, "%s/%s", dir, parent);
    p.type = VHD_TYPE_DIFFERENCING;
    p.parent = pp;
  }
  vhd_image *img;
  cr_assert_eq(vhd_create(path, &p, &img), 0, "%s", vhd_last_error());
  uint8_t buf[65536];
  memset(buf, fill, sizeof buf);
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, parent ? MiB : 0), 0);
  cr_assert_eq(vhd_close(img), 0);
}

static void read_file(const char *name, struct fake *f)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *fp = fopen(path, "rb");
  cr_assert_not_null(fp);
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  memset(f, 0, sizeof *f);
  cr_assert_eq(fake_resize(f, (uint64_t)n), 0);
  cr_assert_eq(fread(f->data, 1, (size_t)n, fp), (size_t)n);
  fclose(fp);
}

/* Corruptions other than the parent lookup (the new locators name paths
 * that do not exist, and a memory backend opens no related files). */
static void count_own(void *opaque, enum vhd_check_severity sev, const char *msg)
{
  if (sev == VHD_CHECK_CORRUPTION && !strstr(msg, "parent image not found"))
    (*(unsigned *)opaque)++;
}

/* The parent id the image at b records, after a check without findings. */
static void check_prefix(const uint8_t *b, size_t len, uint8_t id[16], char hint[4096],
                         size_t n)
{
  vhd_io *io;
  struct vhd_check_result res;
  cr_assert_eq(vhd_io_new_memory(b, len, "child", VHD_IO_RDONLY, &io), 0);
  unsigned own = 0;
  /* The parent is missing here, which check reports as "could not check
   * the link" (-ENOENT) once the file itself is sound. */
  int r = vhd_check_io(io, 0, count_own, &own, &res);
  cr_assert(r == 0 || (r == -ENOENT && strstr(vhd_last_error(), "parent image not found")),
            "%s", vhd_last_error());
  cr_assert_eq(own, 0u, "corrupt after %zu changes", n);
  vhd_image *img;
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_AUTO, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, &img),
               0, "after %zu changes: %s", n, vhd_last_error());
  struct vhd_info info;
  cr_assert_eq(vhd_get_info(img, &info), 0);
  memcpy(id, info.parent_id, 16);
  snprintf(hint, 4096, "%s", info.parent_hint ? info.parent_hint : "");
  vhd_close(img);
}

static void crash_run(enum vhd_format fmt, const char *ext)
{
  char tmpl[4096];
  snprintf(tmpl, sizeof tmpl, "%s/setparent.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  cr_assert_not_null(mkdtemp(tmpl));
  snprintf(dir, sizeof dir, "%s", tmpl);
  char old_name[64], new_name[64], child_name[64];
  snprintf(old_name, sizeof old_name, "old.%s", ext);
  snprintf(new_name, sizeof new_name, "new.%s", ext);
  snprintf(child_name, sizeof child_name, "child.%s", ext);
  make(old_name, NULL, fmt, 0x11);
  make(child_name, old_name, fmt, 0x22);
  make(new_name, NULL, fmt, 0x33);

  struct fake fk;
  read_file(child_name, &fk);
  uint8_t *base = malloc(fk.size);
  size_t base_len = fk.size;
  memcpy(base, fk.data, fk.size);
  uint8_t old_id[16], new_id[16];
  static char hint[4096], new_hint[4096];
  check_prefix(base, base_len, old_id, hint, 0);

  vhd_io *io = fake_io(&fk, "child", VHD_IO_RDWR);
  struct vhd_image *img;
  cr_assert_eq(image_open_layer(io, NULL, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT, NULL, &img), 0,
               "%s", vhd_last_error());
  char np[4200];
  snprintf(np, sizeof np, "%s/%s", dir, new_name);
  vhd_image *parent;
  cr_assert_eq(vhd_open(np, VHD_OPEN_RDONLY, &parent), 0);
  /* Paths long enough that VHD locators outgrow their sectors. */
  static char rel[2048], abs_[2048];
  memset(rel, 'r', 700);
  memcpy(rel + 700, "/new", 5);
  memset(abs_, 0, sizeof abs_);
  abs_[0] = '/';
  memset(abs_ + 1, 'a', 800);
  memcpy(abs_ + 801, "/new", 5);
  struct parent_link link = { parent, rel, abs_ };
  fk.log = 1;
  cr_assert_eq(img->drv->set_parent(img, &link), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0);
  vhd_close(parent);
  cr_assert_gt(fk.nlog, 2u);

  /* Every prefix: old or new identity; the whole: the new one. */
  bool saw_new = false;
  for (size_t n = 0; n <= fk.nlog; n++) {
    uint8_t *b = malloc(base_len > fk.size ? base_len : fk.size);
    size_t len = base_len;
    memcpy(b, base, base_len);
    for (size_t i = 0; i < n; i++) {
      const struct fake_change *c = &fk.changelog[i];
      size_t end = c->op == FAKE_SET_SIZE ? (size_t)c->offset : (size_t)(c->offset + c->len);
      if (c->op == FAKE_FLUSH)
        continue;
      if (end > len || c->op == FAKE_SET_SIZE) {
        b = realloc(b, end ? end : 1);
        if (end > len)
          memset(b + len, 0, end - len);
        len = end;
      }
      if (c->op == FAKE_WRITE)
        memcpy(b + c->offset, c->data, c->len);
    }
    uint8_t id[16];
    check_prefix(b, len, id, hint, n);
    bool is_old = memcmp(id, old_id, 16) == 0;
    if (!is_old) {
      if (!saw_new) {
        memcpy(new_id, id, 16);
        snprintf(new_hint, sizeof new_hint, "%s", hint);
      }
      cr_assert(memcmp(id, new_id, 16) == 0, "a third identity after %zu changes", n);
      /* The new identity comes with the new locators, never before them. */
      cr_assert(strstr(hint, "rrrrrrrr") && strcmp(hint, new_hint) == 0,
                "new identity with locator \"%.40s\" after %zu changes", hint, n);
      saw_new = true;
    } else {
      cr_assert(!saw_new, "back to the old parent after %zu changes", n);
    }
    if (n == fk.nlog)
      cr_assert(!is_old, "the finished change still names the old parent");
    free(b);
  }
  free(base);
  fake_destroy(&fk);
  fake_free_all();
  char cmd[4300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

Test(set_parent, vhd_every_crash_point_opens) { crash_run(VHD_FORMAT_VHD, "vhd"); }
Test(set_parent, vhdx_every_crash_point_opens) { crash_run(VHD_FORMAT_VHDX, "vhdx"); }
