/* SPDX-License-Identifier: BSD-3-Clause */
/* libFuzzer harness for the parent policy: a differencing chain held in
 * memory, opened the way the front ends open untrusted images, so the
 * fuzzer drives locators, identities and the policy together.
 *
 * Input: "VHDFUZZC", a flags byte, then up to 8 files, each a u8 name
 * length, the name (a path under /f/, e.g. "a/top.vhd"), a u32 LE length
 * and the file: plain bytes, or the sparse form of sparse_io.h. The first
 * file is the top image. Flags: bit 0 parents beside the top, bit 1 raw
 * parents allowed, bit 2 parents confined to /f/a.
 *
 * Besides the sanitizers, the harness aborts when the library breaks a
 * promise of the policy: asking the backend for a file outside the allowed
 * directories, taking a raw parent without leave, or failing without a
 * message. fuzz/pack-chain.py writes seeds. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd.h"
#include "sparse_io.h"

#define CHAIN_MAGIC "VHDFUZZC"
#define MAX_FILES 8
#define NAME_MAX_LEN 64
#define READ_BYTES (1u << 20)

static void die(const char *what)
{
  fprintf(stderr, "fuzz_chain: broken promise: %s (last error: \"%s\")\n", what,
          vhd_last_error());
  abort();
}

struct file {
  char name[NAME_MAX_LEN + 4];   /* "/f/" + the name */
  const uint8_t *data;
  size_t size;
  struct sparse sparse;
  bool is_sparse;
};

static struct {
  unsigned count;
  struct file f[MAX_FILES];
  unsigned flags;
} ns;

/* The harness's own textual normalisation, independent of the library's:
 * "." and empty parts dropped, ".." taken back. Returns false when the
 * path climbs above "/" (never a file here). */
static bool normalize(const char *in, char *out, size_t cap)
{
  size_t o = 0;
  for (const char *p = in; *p;) {
    while (*p == '/')
      p++;
    const char *s = p;
    while (*p && *p != '/')
      p++;
    size_t n = (size_t)(p - s);
    if (n == 0 || (n == 1 && s[0] == '.'))
      continue;
    if (n == 2 && s[0] == '.' && s[1] == '.') {
      while (o > 0 && out[o - 1] != '/')
        o--;
      if (o > 0)
        o--;
      continue;
    }
    if (o + 1 + n + 1 > cap)
      return false;
    out[o++] = '/';
    memcpy(out + o, s, n);
    o += n;
  }
  out[o] = '\0';
  return true;
}

static bool under(const char *dir, const char *path)
{
  size_t n = strlen(dir);
  return strncmp(path, dir, n) == 0 && path[n] == '/';
}

static bool allowed(const char *path)
{
  if (!(ns.flags & 5))
    return true;
  char top_dir[NAME_MAX_LEN + 4];
  memcpy(top_dir, ns.f[0].name, sizeof top_dir);
  char *slash = strrchr(top_dir, '/');
  *slash = '\0';
  return ((ns.flags & 1) && under(top_dir, path)) || ((ns.flags & 4) && under("/f/a", path));
}

static int chain_open_related(void *opaque, const char *path, unsigned flags, vhd_io **out);

static int plain_pread(void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct file *f = opaque;
  memset(buf, 0, count);
  if (offset < f->size) {
    size_t n = f->size - offset < count ? (size_t)(f->size - offset) : count;
    memcpy(buf, f->data + offset, n);
  }
  return 0;
}
static int plain_get_size(void *opaque, uint64_t *size) { *size = ((struct file *)opaque)->size; return 0; }
static int file_pread(void *o, void *b, size_t n, uint64_t off)
{
  struct file *f = o;
  return f->is_sparse ? sparse_pread(&f->sparse, b, n, off) : plain_pread(f, b, n, off);
}
static int file_get_size(void *o, uint64_t *s)
{
  struct file *f = o;
  return f->is_sparse ? sparse_get_size(&f->sparse, s) : plain_get_size(f, s);
}
static void file_close(void *o) { (void)o; }

static const struct vhd_io_ops chain_ops = {
  .pread = file_pread,
  .get_size = file_get_size,
  .open_related = chain_open_related,
  .close = file_close,
};

static int chain_open_related(void *opaque, const char *path, unsigned flags, vhd_io **out)
{
  struct file *from = opaque;
  (void)flags;
  char joined[512], norm[512];
  if (path[0] == '/')
    snprintf(joined, sizeof joined, "%s", path);
  else {
    const char *slash = strrchr(from->name, '/');
    snprintf(joined, sizeof joined, "%.*s/%s", (int)(slash - from->name), from->name, path);
  }
  if (!normalize(joined, norm, sizeof norm))
    return -ENOENT;
  /* The one lookup that is not a parent: whether NAME.v01 lies beside an
   * image that probes as raw (the first piece of a split Virtual PC
   * image, lib/image.c), which looks only at the image's own directory. */
  size_t plen = strlen(path);
  bool split_piece = !strchr(path, '/') && plen > 4 && path[plen - 4] == '.' &&
                     (path[plen - 3] | 0x20) == 'v' && path[plen - 2] == '0' && path[plen - 1] == '1';
  if (!split_piece && !allowed(norm)) {
    fprintf(stderr, "fuzz_chain: %s asked for %s (%s)\n", from->name, path, norm);
    die("the library asked for a file outside the allowed directories");
  }
  for (unsigned i = 0; i < ns.count; i++)
    if (strcmp(ns.f[i].name, norm) == 0)
      return vhd_io_new(&chain_ops, &ns.f[i], ns.f[i].name, VHD_IO_RDONLY, out);
  return -ENOENT;
}

static bool parse(const uint8_t *data, size_t size)
{
  if (size < 10 || memcmp(data, CHAIN_MAGIC, 8) != 0)
    return false;
  ns.flags = data[8];
  ns.count = 0;
  size_t pos = 9;
  while (ns.count < MAX_FILES && pos < size) {
    size_t nlen = data[pos++];
    if (nlen == 0 || nlen > NAME_MAX_LEN || nlen > size - pos)
      break;
    struct file *f = &ns.f[ns.count];
    char raw[NAME_MAX_LEN + 8];
    snprintf(raw, sizeof raw, "/f/%.*s", (int)nlen, (const char *)data + pos);
    pos += nlen;
    if (!normalize(raw, f->name, sizeof f->name) || !under("/f", f->name))
      break;
    if (size - pos < 4)
      break;
    size_t len = (size_t)get_le(data + pos, 4);
    pos += 4;
    if (len > size - pos)
      len = size - pos;
    f->data = data + pos;
    f->size = len;
    f->is_sparse = sparse_parse(f->data, f->size, &f->sparse) != 0;
    pos += len;
    ns.count++;
  }
  return ns.count > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!parse(data, size))
    return 0;
  struct vhd_open_params p;
  vhd_open_params_init(&p);
  if (ns.flags & 1)
    p.flags |= VHD_OPEN_PARENTS_BESIDE;
  if (ns.flags & 2)
    p.flags |= VHD_OPEN_RAW_PARENT;
  if (ns.flags & 4)
    p.parent_dir = "/f/a";
  vhd_io *io;
  if (vhd_io_new(&chain_ops, &ns.f[0], ns.f[0].name, VHD_IO_RDONLY, &io) < 0)
    return 0;
  vhd_image *img;
  if (vhd_open_io_with(io, &p, &img) < 0) {
    if (!*vhd_last_error())
      die("open failed without a message");
    return 0;
  }
  for (vhd_image *layer = vhd_get_parent(img); layer; layer = vhd_get_parent(layer)) {
    struct vhd_info info;
    if (vhd_get_info(layer, &info) < 0)
      die("get_info failed on an open parent");
    if (info.format == VHD_FORMAT_RAW && !(ns.flags & 2))
      die("a raw file was taken as a parent without leave");
    if (info.path && !allowed(info.path))
      die("a parent outside the allowed directories was opened");
  }
  struct vhd_info info;
  if (vhd_get_info(img, &info) < 0)
    die("get_info failed on an open image");
  static uint8_t buf[64 << 10];
  uint64_t end = info.virtual_size < READ_BYTES ? info.virtual_size : READ_BYTES;
  for (uint64_t off = 0; off < end; off += sizeof buf) {
    size_t n = end - off < sizeof buf ? (size_t)(end - off) : sizeof buf;
    if (vhd_pread(img, buf, n, off) < 0 && !*vhd_last_error())
      die("read failed without a message");
  }
  vhd_close(img);
  return 0;
}
