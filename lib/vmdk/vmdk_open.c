/* SPDX-License-Identifier: BSD-3-Clause */
/* VMDK: probe, open (a monolithic sparse file, or a descriptor file and
 * the extent files it lists), identity and the parent. Read only. */
#include "vmdk/vmdk.h"
#include "error.h"
#include "foreign.h"
#include "util/crc32.h"
#include "util/endian.h"
#include "util/strfmt.h"

#define PROBE_BYTES 4096u

static int vmdk_probe(vhd_io *io, uint64_t file_size)
{
  uint8_t p[PROBE_BYTES];
  size_t n = file_size < sizeof p ? (size_t)file_size : sizeof p;
  if (n < 4)
    return 0;
  int r = io_pread(io, p, n, 0);
  if (r < 0)
    return r;
  if (memcmp(p, "KDMV", 4) == 0)
    return 10;
  return foreign_vmdk_descriptor(p, n) ? 5 : 0;
}

/* Where the extents go while a descriptor is parsed. */
struct extent_list {
  struct vhd_image *img;
  struct vmdk *v;
  unsigned cap;
  unsigned lines;                  /* monolithic files: how many, */
  struct vmdk_extent_line first;   /* and the first */
};

static int grow(struct extent_list *l)
{
  struct vmdk *v = l->v;
  if (v->count < l->cap)
    return 0;
  if (l->cap >= VMDK_EXTENTS_MAX)
    return vhd_error(EINVAL, "%s: VMDK descriptor lists more than %u extents", l->img->path,
                     VMDK_EXTENTS_MAX);
  unsigned cap = l->cap ? l->cap * 2 : 8;
  struct vmdk_extent *e = vhd_calloc(cap, sizeof *e);
  if (!e)
    return vhd_error(ENOMEM, "%s: out of memory", l->img->path);
  if (v->count)
    memcpy(e, v->extents, v->count * sizeof *e);
  vhd_free(v->extents);
  v->extents = e;
  l->cap = cap;
  return 0;
}

/* An extent's name from an untrusted descriptor: a file beside it or
 * below, never an absolute path or one that climbs out. */
static bool safe_name(const char *name)
{
  if (name[0] == '/' || name[0] == '\\' || strchr(name, ':'))
    return false;
  for (const char *p = name; *p;) {
    const char *q = p;
    while (*q && *q != '/' && *q != '\\')
      q++;
    if (q - p == 2 && p[0] == '.' && p[1] == '.')
      return false;
    p = *q ? q + 1 : q;
  }
  return true;
}

static int open_extent_file(struct extent_list *l, struct vmdk_extent *e,
                            const struct vmdk_extent_line *line)
{
  struct vhd_image *img = l->img;
  if (!safe_name(line->name))
    return vhd_error(EACCES, "%s: VMDK extent \"%s\" is not a file beside the descriptor",
                     img->path, line->name);
  unsigned flags = VHD_IO_RDONLY | ((img->flags & VHD_OPEN_FORCE_SHARE) ? VHD_IO_NOLOCK : 0);
  int r = io_open_related(img->io, line->name, flags, &e->io);
  if (r < 0) {
    vhd_error_prefix(img->path);
    return r;
  }
  e->owns_io = true;
  if (line->kind == VMDK_EXTENT_SPARSE) {
    e->sparse.io = e->io;
    if ((r = vmdk_sparse_open(&e->sparse)) < 0)
      return r;
    if (e->sparse.capacity < line->sectors)
      return vhd_error(EINVAL, "%s: VMDK extent %s holds %llu sectors, the descriptor says "
                       "%llu", img->path, line->name,
                       (unsigned long long)e->sparse.capacity,
                       (unsigned long long)line->sectors);
    return 0;
  }
  if ((r = io_get_size(e->io, &e->flat_size)) < 0)
    return r;
  e->flat_offset = line->offset * VMDK_SECTOR;
  if (line->offset > e->flat_size / VMDK_SECTOR ||
      e->len > e->flat_size - e->flat_offset)
    return vhd_error(EINVAL, "%s: VMDK flat extent %s is shorter than the descriptor says",
                     img->path, line->name);
  return 0;
}

static int add_extent(void *ctx, const struct vmdk_extent_line *line)
{
  struct extent_list *l = ctx;
  struct vmdk *v = l->v;
  if (!v->descriptor_file) {   /* monolithic: its one line, checked by the caller */
    if (l->lines++ == 0)
      l->first = *line;
    return 0;
  }
  uint64_t start = v->count ? v->extents[v->count - 1].start + v->extents[v->count - 1].len : 0;
  if (line->sectors == 0 || line->sectors > (UINT64_MAX >> 12) / VMDK_SECTOR ||
      start + line->sectors * VMDK_SECTOR > (UINT64_MAX >> 2))
    return vhd_error(EINVAL, "%s: VMDK descriptor: extent sizes are 0 or add up past 2^62",
                     l->img->path);
  int r = grow(l);
  if (r < 0)
    return r;
  struct vmdk_extent *e = &v->extents[v->count++];
  memset(e, 0, sizeof *e);
  e->kind = line->kind;
  e->start = start;
  e->len = line->sectors * VMDK_SECTOR;
  return line->kind == VMDK_EXTENT_ZERO ? 0 : open_extent_file(l, e, line);
}

static int open_monolithic(struct vhd_image *img, struct vmdk *v)
{
  struct extent_list l = { img, v, 1, 0, { 0 } };
  v->extents = vhd_calloc(1, sizeof *v->extents);
  if (!v->extents)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  v->count = 1;   /* from here on, close frees what it holds */
  struct vmdk_extent *e = &v->extents[0];
  struct vmdk_sparse *s = &e->sparse;
  s->io = img->io;
  int r = vmdk_sparse_open(s);
  if (r < 0)
    return r;
  if (s->descriptor_sector == 0 || s->descriptor_sectors == 0)
    return vhd_error(ENOTSUP, "%s: VMDK sparse extent without a descriptor: a piece of a "
                     "split disk; open the disk's descriptor file", img->path);
  if (s->descriptor_sectors > VMDK_DESCRIPTOR_MAX / VMDK_SECTOR ||
      s->descriptor_sector > s->file_size / VMDK_SECTOR ||
      s->descriptor_sectors * VMDK_SECTOR > s->file_size - s->descriptor_sector * VMDK_SECTOR)
    return vhd_error(EINVAL, "%s: VMDK sparse header: the descriptor lies past the end of the "
                     "file or is over 64 KiB", img->path);
  size_t n = (size_t)(s->descriptor_sectors * VMDK_SECTOR);
  char *text = vhd_malloc(n), type[64];
  if (!text)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  r = io_pread(img->io, text, n, s->descriptor_sector * VMDK_SECTOR);
  if (r == 0)
    r = vmdk_parse_descriptor(img, v, text, n, type, sizeof type, add_extent, &l);
  vhd_free(text);
  if (r < 0)
    return r;
  if (strcmp(type, "monolithicSparse") != 0 && strcmp(type, "streamOptimized") != 0)
    return vhd_error(ENOTSUP, "%s: VMDK createType \"%s\" in a sparse extent: a piece of a "
                     "split disk; open the disk's descriptor file", img->path, type);
  if (l.lines != 1 || l.first.kind != VMDK_EXTENT_SPARSE || l.first.sectors != s->capacity)
    return vhd_error(ENOTSUP, "%s: VMDK embedded descriptor lists %u extents; only itself, "
                     "one SPARSE extent of its capacity, is read", img->path, l.lines);
  e->kind = VMDK_EXTENT_SPARSE;
  e->len = s->capacity * VMDK_SECTOR;
  v->stream = s->compressed;
  return 0;
}

/* createTypes whose data lives on an ESX datastore's own formats or on a
 * host device: refused even if their extent lines look readable. */
static bool refused_type(const char *type)
{
  static const char *const refused[] = {
    "vmfsSparse", "seSparse", "vmfsRaw", "vmfsRawDeviceMap", "vmfsPassthroughRawDeviceMap",
    "fullDevice", "partitionedDevice",
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    if (strcmp(type, refused[i]) == 0)
      return true;
  return false;
}

static int open_descriptor_file(struct vhd_image *img, struct vmdk *v, uint64_t size)
{
  struct extent_list l = { img, v, 0, 0, { 0 } };
  v->descriptor_file = true;
  if (size > VMDK_DESCRIPTOR_MAX)
    return vhd_error(EINVAL, "%s: VMDK descriptor file is over 64 KiB", img->path);
  char *text = vhd_malloc((size_t)size + 1), type[64];
  if (!text)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  int r = io_pread(img->io, text, (size_t)size, 0);
  if (r == 0)
    r = vmdk_parse_descriptor(img, v, text, (size_t)size, type, sizeof type, add_extent, &l);
  vhd_free(text);
  if (r == 0 && refused_type(type))
    r = vhd_error(ENOTSUP, "%s: VMDK createType \"%s\" is not read (ESX sparse formats and "
                  "raw devices)", img->path, type);
  if (r == 0 && v->count == 0)
    r = vhd_error(EINVAL, "%s: VMDK descriptor lists no extents", img->path);
  return r;
}

static void vmdk_close(struct vhd_image *img)
{
  struct vmdk *v = img->priv;
  if (!v)
    return;
  for (unsigned i = 0; i < v->count && v->extents; i++) {
    vmdk_sparse_close(&v->extents[i].sparse);
    if (v->extents[i].owns_io)
      vhd_io_close(v->extents[i].io);
  }
  vhd_free(v->extents);
  vhd_free(v->parent_hint);
  vhd_free(v);
  img->priv = NULL;
}

static int vmdk_open(struct vhd_image *img, struct vhd_diag *d)
{
  (void)d;
  if (img->flags & VHD_OPEN_RDWR)
    return vhd_error(EROFS, "%s: VMDK is a read-only format here: convert it (vhdtool "
                     "convert) to VHD or VHDX to write", img->path);
  struct vmdk *v = vhd_calloc(1, sizeof *v);
  if (!v)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  img->priv = v;
  uint64_t size;
  uint8_t head[VMDK_SECTOR];
  int r = io_get_size(img->io, &size);
  size_t n = size < sizeof head ? (size_t)size : sizeof head;
  if (r == 0 && n < 4)
    r = vhd_error(EINVAL, "%s: too short for a VMDK", img->path);
  if (r == 0)
    r = io_pread(img->io, head, n, 0);
  if (r == 0)
    r = memcmp(head, "KDMV", 4) == 0 ? open_monolithic(img, v)
                                     : open_descriptor_file(img, v, size);
  if (r < 0)
    return r;
  const struct vmdk_extent *last = &v->extents[v->count - 1];
  img->virtual_size = last->start + last->len;
  /* No identity but the CID, which a copy keeps: the first sector and the
   * CID tell layers apart. */
  put_le32(v->fingerprint, crc32_of(head, n));
  put_le32(v->fingerprint + 4, v->cid);
  put_le64(v->fingerprint + 8, size);
  img->sector_size = VMDK_SECTOR;
  img->type = v->parent_hint ? VHD_TYPE_DIFFERENCING : VHD_TYPE_DYNAMIC;
  if (!v->parent_hint && v->descriptor_file && v->extents[0].kind == VMDK_EXTENT_FLAT)
    img->type = VHD_TYPE_FIXED;
  return 0;
}

static void vmdk_info(struct vhd_image *img, struct vhd_info *info)
{
  struct vmdk *v = img->priv;
  const struct vmdk_extent *e = &v->extents[0];
  if (e->kind == VMDK_EXTENT_SPARSE) {
    info->block_size = (uint32_t)e->sparse.grain_bytes;
    info->total_blocks = img->virtual_size / e->sparse.grain_bytes +
                         (img->virtual_size % e->sparse.grain_bytes != 0);
    info->allocated_blocks = vmdk_allocated_grains(img);
  }
  info->physical_sector_size = VMDK_SECTOR;
  vhd_snprintf(info->creator, sizeof info->creator, "VMDK %s%s, %u extent%s",
               v->descriptor_file ? "descriptor" : "sparse",
               v->stream ? " (stream-optimized)" : "", v->count, v->count == 1 ? "" : "s");
  memcpy(info->id, v->fingerprint, sizeof info->id);
  put_le32(info->parent_id, v->parent_cid);
}

static int vmdk_check(struct vhd_image *img, struct vhd_diag *d)
{
  struct vmdk *v = img->priv;
  int r = 0;
  for (unsigned i = 0; i < v->count && r == 0; i++)
    if (v->extents[i].kind == VMDK_EXTENT_SPARSE)
      r = vmdk_sparse_check(img, &v->extents[i].sparse, d);
  return r;
}

static int vmdk_parent_candidates(struct vhd_image *img, struct parent_candidates *c)
{
  struct vmdk *v = img->priv;
  return parent_candidates_one(img, c, v->parent_hint, "parentFileNameHint");
}

/* The child names its parent's CID; a parent written since has another. */
static int vmdk_parent_matches(struct vhd_image *img, struct vhd_image *candidate)
{
  struct vmdk *v = img->priv;
  if (candidate->drv != img->drv)
    return vhd_error(EINVAL, "%s: its parent %s is not a VMDK", img->path, candidate->path);
  struct vmdk *p = candidate->priv;
  if (p->cid != v->parent_cid)
    return vhd_error(EINVAL, "%s: parentCID %08x differs from the CID %08x of %s (the parent "
                     "changed after the child was made)", img->path, v->parent_cid, p->cid,
                     candidate->path);
  return 0;
}

const struct vhd_driver vhd_driver_vmdk = {
  .name = "vmdk",
  .format = VHD_FORMAT_VMDK,
  .probe = vmdk_probe,
  .open = vmdk_open,
  .close = vmdk_close,
  .read = vmdk_read,
  .block_status = vmdk_block_status,
  .host_extent = vmdk_host_extent,
  .info = vmdk_info,
  .parent_candidates = vmdk_parent_candidates,
  .parent_matches = vmdk_parent_matches,
  .check = vmdk_check,
  .parent_by_name_only = true,
};
