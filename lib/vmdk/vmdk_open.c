/* VMDK sparse extents: probe, header (or the footer a stream keeps at its
 * end), the embedded descriptor and the grain directory. */
#include "vmdk/vmdk.h"
#include "error.h"
#include "util/crc32.h"
#include "util/endian.h"
#include "util/strfmt.h"

#define FLAG_NEWLINE_TEST 0x1u
#define FLAG_ZEROED_GRAINS 0x4u
#define FLAG_COMPRESSED 0x10000u
#define FLAG_MARKERS 0x20000u
#define GD_AT_END UINT64_MAX
#define MARKER_FOOTER 3u
/* Grains above 1 MiB exist in no real file (VMware and qemu write 64 KiB);
 * the bound keeps a read's buffers small. */
#define GRAIN_SECTORS_MAX 2048u
#define GTES_MAX 512u
#define DESCRIPTOR_MAX (64u * 1024)

static int vmdk_probe(vhd_io *io, uint64_t file_size)
{
  uint8_t m[4];
  if (file_size < VMDK_SECTOR || io_pread(io, m, sizeof m, 0) < 0)
    return 0;
  return memcmp(m, "KDMV", 4) == 0 ? 10 : 0;
}

static int bad(struct vhd_image *img, const char *what)
{
  return vhd_error(EINVAL, "%s: VMDK sparse header: %s", img->path, what);
}

/* A stream-optimized file may say its grain directory is at the end: the
 * real header is then the footer, between a footer marker and the
 * end-of-stream marker. */
static int read_footer(struct vhd_image *img, struct vmdk *v, uint8_t *h)
{
  uint8_t tail[3 * VMDK_SECTOR];
  if (v->file_size < 4 * VMDK_SECTOR)
    return bad(img, "gdOffset is GD_AT_END but the file is too short for a footer");
  int r = io_pread(img->io, tail, sizeof tail, v->file_size - sizeof tail);
  if (r < 0)
    return r;
  static const uint8_t zero[12];
  if (get_le64(tail) != 1 || get_le32(tail + 8) != 0 || get_le32(tail + 12) != MARKER_FOOTER ||
      memcmp(tail + VMDK_SECTOR, "KDMV", 4) != 0 || memcmp(tail + 2 * VMDK_SECTOR, zero, 12) != 0)
    return bad(img, "gdOffset is GD_AT_END but no footer marker, footer and end-of-stream "
               "marker end the file");
  memcpy(h, tail + VMDK_SECTOR, VMDK_SECTOR);
  return 0;
}

/* value of KEY="..." or KEY=... on one descriptor line, into out. */
static bool line_value(const char *line, size_t n, const char *key, char *out, size_t cap)
{
  size_t k = strlen(key);
  if (n <= k || memcmp(line, key, k) != 0 || line[k] != '=')
    return false;
  const char *v = line + k + 1;
  size_t len = n - k - 1;
  if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
    v++;
    len -= 2;
  }
  if (len >= cap)
    len = cap - 1;
  memcpy(out, v, len);
  out[len] = 0;
  return true;
}

static uint32_t hex32(const char *s, bool *ok)
{
  uint32_t v = 0;
  size_t i = 0;
  for (; s[i] && i < 8; i++) {
    char c = s[i];
    unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') :
                 (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (unsigned)((c | 0x20) - 'a' + 10) : 16;
    if (d == 16)
      break;
    v = v << 4 | d;
  }
  *ok = i > 0 && s[i] == 0;
  return v;
}

/* The embedded descriptor: one SPARSE extent (this file), the create type
 * and, for a child, its parent's CID and name. */
static int parse_descriptor(struct vhd_image *img, struct vmdk *v, char *text, size_t n,
                            uint64_t capacity)
{
  char type[64] = "", value[VMDK_NAME_MAX];
  unsigned extents = 0;
  bool ok = true, has_parent = false;
  v->parent_cid = UINT32_MAX;
  for (size_t i = 0; i < n;) {
    size_t end = i;
    while (end < n && text[end] != '\n')
      end++;
    size_t len = end - i;
    const char *line = text + i;
    if (len && line[len - 1] == '\r')
      len--;
    if (line_value(line, len, "createType", value, sizeof type))
      memcpy(type, value, sizeof type);
    else if (line_value(line, len, "CID", value, sizeof value))
      v->cid = hex32(value, &ok);
    else if (line_value(line, len, "parentCID", value, sizeof value))
      v->parent_cid = hex32(value, &ok);
    else if (line_value(line, len, "parentFileNameHint", value, sizeof value)) {
      has_parent = true;
      v->parent_hint = vhd_malloc(strlen(value) + 1);
      if (!v->parent_hint)
        return vhd_error(ENOMEM, "%s: out of memory", img->path);
      strcpy(v->parent_hint, value);
    } else if ((len > 3 && memcmp(line, "RW ", 3) == 0) ||
               (len > 7 && memcmp(line, "RDONLY ", 7) == 0) ||
               (len > 9 && memcmp(line, "NOACCESS ", 9) == 0))
      extents++;
    if (!ok)
      return vhd_error(EINVAL, "%s: VMDK descriptor: a CID is not hexadecimal", img->path);
    i = end + 1;
  }
  if (strcmp(type, "monolithicSparse") != 0 && strcmp(type, "streamOptimized") != 0)
    return vhd_error(ENOTSUP, "%s: VMDK createType \"%s\" is not read (only monolithicSparse "
                     "and streamOptimized; a piece of a split disk is read through its "
                     "descriptor, which this version does not read)", img->path, type);
  if (extents != 1)
    return vhd_error(ENOTSUP, "%s: VMDK descriptor lists %u extents; only a single sparse "
                     "extent is read", img->path, extents);
  if ((v->parent_cid != UINT32_MAX) != has_parent)
    return vhd_error(EINVAL, "%s: VMDK descriptor: parentCID and parentFileNameHint do not "
                     "come together", img->path);
  (void)capacity;
  return 0;
}

static int read_descriptor(struct vhd_image *img, struct vmdk *v, const uint8_t *h,
                           uint64_t capacity)
{
  uint64_t off = get_le64(h + 28), sectors = get_le64(h + 36);
  if (off == 0 || sectors == 0)
    return bad(img, "no embedded descriptor (a piece of a split disk: open its descriptor)");
  if (sectors > DESCRIPTOR_MAX / VMDK_SECTOR || off > v->file_size / VMDK_SECTOR ||
      sectors * VMDK_SECTOR > v->file_size - off * VMDK_SECTOR)
    return bad(img, "the descriptor lies past the end of the file or is over 64 KiB");
  size_t n = (size_t)(sectors * VMDK_SECTOR);
  char *text = vhd_malloc(n);
  if (!text)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  int r = io_pread(img->io, text, n, off * VMDK_SECTOR);
  const char *nul = r == 0 ? memchr(text, 0, n) : NULL;
  if (r == 0)
    r = parse_descriptor(img, v, text, nul ? (size_t)(nul - text) : n, capacity);
  vhd_free(text);
  return r;
}

static int read_gd(struct vhd_image *img, struct vmdk *v, uint64_t gd_sector, uint64_t capacity)
{
  uint64_t span = v->grain_sectors * v->gtes_per_gt;
  v->gd_count = capacity / span + (capacity % span != 0);
  uint64_t bytes = v->gd_count * 4;
  if (gd_sector > v->file_size / VMDK_SECTOR || bytes > v->file_size - gd_sector * VMDK_SECTOR)
    return bad(img, "the grain directory lies past the end of the file");
  v->gd = vhd_malloc((size_t)bytes + 1);
  if (!v->gd)
    return vhd_error(ENOMEM, "%s: out of memory for the grain directory", img->path);
  int r = bytes ? io_pread(img->io, v->gd, (size_t)bytes, gd_sector * VMDK_SECTOR) : 0;
  if (r < 0)
    return r;
  uint64_t gt_bytes = (uint64_t)v->gtes_per_gt * 4;
  for (uint64_t i = 0; i < v->gd_count; i++) {
    uint32_t s = get_le32((const uint8_t *)&v->gd[i]);
    if (s && ((uint64_t)s > v->file_size / VMDK_SECTOR ||
              gt_bytes > v->file_size - (uint64_t)s * VMDK_SECTOR))
      return vhd_error(EINVAL, "%s: VMDK grain directory entry %llu: grain table at sector %u "
                       "lies past the end of the file", img->path, (unsigned long long)i, s);
    v->gd[i] = s;
  }
  return 0;
}

static int parse_header(struct vhd_image *img, struct vmdk *v, uint8_t *h)
{
  v->version = get_le32(h + 4);
  if (v->version < 1 || v->version > 3)
    return bad(img, "version is not 1, 2 or 3");
  v->flags = get_le32(h + 8);
  uint64_t gd = get_le64(h + 56);
  if (gd == GD_AT_END) {
    int r = read_footer(img, v, h);
    if (r < 0)
      return r;
    v->flags = get_le32(h + 8);
    gd = get_le64(h + 56);
    if (gd == GD_AT_END)
      return bad(img, "the footer's gdOffset is GD_AT_END too");
  }
  if ((v->flags & FLAG_NEWLINE_TEST) && memcmp(h + 73, "\n \r\n", 4) != 0)
    return bad(img, "the newline test bytes are changed (the file went through a text-mode "
               "transfer)");
  uint64_t capacity = get_le64(h + 12);
  v->grain_sectors = get_le64(h + 20);
  v->gtes_per_gt = get_le32(h + 44);
  if (v->grain_sectors == 0 || v->grain_sectors > GRAIN_SECTORS_MAX ||
      (v->grain_sectors & (v->grain_sectors - 1)))
    return bad(img, "grainSize is not a power of 2 up to 2048 sectors");
  if (v->gtes_per_gt == 0 || v->gtes_per_gt > GTES_MAX)
    return bad(img, "numGTEsPerGT is not 1..512");
  if (capacity == 0 || capacity > (UINT64_MAX >> 10) / VMDK_SECTOR)
    return bad(img, "capacity is 0 or too large");
  v->grain_bytes = v->grain_sectors * VMDK_SECTOR;
  v->zeroed_grains = (v->flags & FLAG_ZEROED_GRAINS) != 0;
  v->compressed = (v->flags & FLAG_COMPRESSED) != 0;
  uint16_t algorithm = get_le16(h + 77);
  if (v->compressed && (algorithm != 1 || !(v->flags & FLAG_MARKERS)))
    return bad(img, "compressed grains need compressAlgorithm 1 (deflate) and markers");
  img->virtual_size = capacity * VMDK_SECTOR;
  int r = read_descriptor(img, v, h, capacity);
  if (r == 0)
    r = read_gd(img, v, gd, capacity);
  return r;
}

static void vmdk_close(struct vhd_image *img)
{
  struct vmdk *v = img->priv;
  if (!v)
    return;
  vhd_free(v->gd);
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
  uint8_t h[VMDK_SECTOR];
  int r = io_get_size(img->io, &v->file_size);
  if (r == 0 && v->file_size < VMDK_SECTOR)
    r = bad(img, "the file is shorter than the header");
  if (r == 0)
    r = io_pread(img->io, h, sizeof h, 0);
  if (r == 0 && memcmp(h, "KDMV", 4) != 0)
    r = bad(img, "no KDMV magic");
  if (r == 0)
    r = parse_header(img, v, h);
  if (r < 0)
    return r;
  /* No identity of its own but the CID, which a copy keeps: the header
   * (after a footer, the footer) and the CID tell layers apart. */
  put_le32(v->fingerprint, crc32_of(h, sizeof h));
  put_le32(v->fingerprint + 4, v->cid);
  put_le64(v->fingerprint + 8, v->file_size);
  img->sector_size = VMDK_SECTOR;
  img->type = v->parent_hint ? VHD_TYPE_DIFFERENCING : VHD_TYPE_DYNAMIC;
  return 0;
}

static void vmdk_info(struct vhd_image *img, struct vhd_info *info)
{
  struct vmdk *v = img->priv;
  info->block_size = (uint32_t)v->grain_bytes;
  info->total_blocks = img->virtual_size / v->grain_bytes +
                       (img->virtual_size % v->grain_bytes != 0);
  info->physical_sector_size = VMDK_SECTOR;
  vhd_snprintf(info->creator, sizeof info->creator, "VMDK sparse version %u%s", v->version,
               v->compressed ? ", stream-optimized" : "");
  memcpy(info->id, v->fingerprint, sizeof info->id);
  put_le32(info->parent_id, v->parent_cid);
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
    return vhd_error(EINVAL, "%s: its parent %s is not a VMDK sparse extent", img->path,
                     candidate->path);
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
  .parent_by_name_only = true,
};
