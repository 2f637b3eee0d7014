/* SPDX-License-Identifier: BSD-3-Clause */
/* VDI (VirtualBox) fixed and dynamic images, read only. Layout facts:
 * shared/reference/vmdk-vdi-qcow2.md section 3 (from VirtualBox's
 * VDICore.h). No compression, so this driver is part of the freestanding
 * core too. Differencing and undo images are refused: their parent is
 * named only in VirtualBox's media registry, never in the file. */
#include "driver.h"
#include "error.h"
#include "util/arith.h"
#include "util/claims.h"
#include "util/endian.h"
#include "util/strfmt.h"

#define VDI_SIGNATURE 0xBEDA107Fu
#define VDI_HEADER_END 456u         /* v1 header: 72 + 384 bytes */
#define VDI_TYPE_NORMAL 1u
#define VDI_TYPE_FIXED 2u
#define BLOCK_FREE 0xFFFFFFFFu      /* not in this image: zeros for a base */
#define BLOCK_ZERO 0xFFFFFFFEu      /* zeros, whatever lies below */
#define VDI_SECTOR 512u

struct vdi {
  uint32_t image_type;
  uint64_t block_size;
  uint64_t data_offset;
  uint32_t *map;
  uint64_t blocks;
  uint64_t allocated;
  uint64_t file_size;
  uint8_t uuid[16];
  uint32_t version;
};

static int vdi_probe(vhd_io *io, uint64_t file_size)
{
  uint8_t s[4];
  if (file_size < VDI_HEADER_END)
    return 0;
  int r = io_pread(io, s, sizeof s, 64);
  if (r < 0)
    return r;
  return get_le32(s) == VDI_SIGNATURE ? 10 : 0;
}

static int bad(struct vhd_image *img, const char *what)
{
  return vhd_error(EINVAL, "%s: VDI header: %s", img->path, what);
}

static int parse_header(struct vhd_image *img, struct vdi *v, const uint8_t *h)
{
  v->version = get_le32(h + 68);
  if (v->version >> 16 != 1)
    return bad(img, "version is not 1.x");
  if (get_le32(h + 72) < VDI_HEADER_END - 72)
    return bad(img, "cbHeader is smaller than a version 1 header");
  v->image_type = get_le32(h + 76);
  if (v->image_type == 3 || v->image_type == 4)
    return vhd_error(ENOTSUP, "%s: VDI %s image: not read (its parent is named only in "
                     "VirtualBox's media registry); clone it to a normal image with "
                     "VBoxManage clonemedium first", img->path,
                     v->image_type == 3 ? "undo" : "differencing");
  if (v->image_type != VDI_TYPE_NORMAL && v->image_type != VDI_TYPE_FIXED)
    return bad(img, "imageType is not 1 (normal) or 2 (fixed)");
  uint64_t map_offset = get_le32(h + 340);
  v->data_offset = get_le32(h + 344);
  uint64_t disk = get_le64(h + 368);
  v->block_size = get_le32(h + 376);
  v->blocks = get_le32(h + 384);
  v->allocated = get_le32(h + 388);
  memcpy(v->uuid, h + 392, 16);
  if (get_le32(h + 380) != 0)
    return bad(img, "cbBlockExtra is not 0");
  if (v->block_size < VDI_SECTOR || (v->block_size & (v->block_size - 1)))
    return bad(img, "cbBlock is not a power of 2 of at least 512");
  if (disk % VDI_SECTOR)
    return bad(img, "cbDisk is not a multiple of 512");
  if (v->blocks != disk / v->block_size + (disk % v->block_size != 0))
    return bad(img, "cBlocks does not cover cbDisk in blocks of cbBlock");
  if (map_offset < VDI_HEADER_END || map_offset > v->file_size ||
      v->blocks * 4 > v->file_size - map_offset)
    return bad(img, "the block map (offBlocks, cBlocks) lies past the end of the file");
  if (v->data_offset < map_offset + v->blocks * 4 || v->data_offset > v->file_size)
    return bad(img, "offData overlaps the block map or lies past the end of the file");
  img->virtual_size = disk;
  v->map = vhd_malloc((size_t)v->blocks * 4 + 1);
  if (!v->map)
    return vhd_error(ENOMEM, "%s: out of memory for the block map", img->path);
  int r = io_pread(img->io, v->map, (size_t)v->blocks * 4, map_offset);
  if (r < 0)
    return r;
  uint64_t slots = (v->file_size - v->data_offset) / v->block_size +
                   ((v->file_size - v->data_offset) % v->block_size != 0);
  for (uint64_t b = 0; b < v->blocks; b++) {
    uint32_t e = get_le32((const uint8_t *)&v->map[b]);
    if (e != BLOCK_FREE && e != BLOCK_ZERO && e >= slots)
      return vhd_error(EINVAL, "%s: VDI block map entry %llu: block %u lies past the end of "
                       "the file", img->path, (unsigned long long)b, e);
    v->map[b] = e;
  }
  return 0;
}

static void vdi_close(struct vhd_image *img)
{
  struct vdi *v = img->priv;
  if (!v)
    return;
  vhd_free(v->map);
  vhd_free(v);
  img->priv = NULL;
}

static int vdi_open(struct vhd_image *img, struct vhd_diag *d)
{
  (void)d;
  if (img->flags & VHD_OPEN_RDWR)
    return vhd_error(EROFS, "%s: VDI is a read-only format here: convert it (vhdtool "
                     "convert) to VHD or VHDX to write", img->path);
  struct vdi *v = vhd_calloc(1, sizeof *v);
  if (!v)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  img->priv = v;
  uint8_t h[VDI_HEADER_END];
  int r = io_get_size(img->io, &v->file_size);
  if (r == 0 && v->file_size < sizeof h)
    r = bad(img, "the file is shorter than the header");
  if (r == 0)
    r = io_pread(img->io, h, sizeof h, 0);
  if (r == 0 && get_le32(h + 64) != VDI_SIGNATURE)
    r = bad(img, "no signature");
  if (r == 0)
    r = parse_header(img, v, h);
  if (r < 0)
    return r;
  img->sector_size = VDI_SECTOR;
  img->type = v->image_type == VDI_TYPE_FIXED ? VHD_TYPE_FIXED : VHD_TYPE_DYNAMIC;
  return 0;
}

/* The run at off: one kind of block, data only while the blocks lie one
 * after the other in the file. */
static enum layer_state lookup(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                               uint64_t *run)
{
  const struct vdi *v = img->priv;
  uint64_t b = off / v->block_size, in_block = off % v->block_size;
  uint32_t e = v->map[b];
  enum layer_state s = e == BLOCK_FREE ? LAYER_ABSENT : e == BLOCK_ZERO ? LAYER_ZERO : LAYER_DATA;
  *host = s == LAYER_DATA ? v->data_offset + (uint64_t)e * v->block_size + in_block : 0;
  *run = v->block_size - in_block;
  for (uint64_t n = b + 1; n < v->blocks && *run < len; n++) {
    uint32_t f = v->map[n];
    bool same = s == LAYER_DATA ? f == e + (n - b) && f != BLOCK_ZERO && f != BLOCK_FREE
                                : f == e;
    if (!same)
      break;
    *run += v->block_size;
  }
  *run = min_u64(*run, len);
  return s;
}

static int vdi_read(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
  const struct vdi *v = img->priv;
  uint8_t *out = buf;
  int r = 0;
  while (len && r == 0) {
    uint64_t host, run;
    enum layer_state s = lookup(img, off, len, &host, &run);
    if (s == LAYER_ABSENT)
      r = image_read_parent(img, out, (size_t)run, off);
    else if (s == LAYER_ZERO)
      memset(out, 0, (size_t)run);
    else
      r = io_pread_upto(img->io, out, (size_t)run, host, v->file_size);
    out += run;
    off += run;
    len -= (size_t)run;
  }
  return r;
}

static int vdi_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                            enum layer_state *state, uint64_t *run)
{
  uint64_t host;
  *state = lookup(img, off, len, &host, run);
  return 0;
}

static int vdi_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                           uint64_t *run)
{
  return lookup(img, off, len, host, run) == LAYER_DATA ? 0 : -ENOTSUP;
}

/* Blocks of the file that two guest blocks share: a finding for check
 * (open allows it: it reads, but a writer would corrupt both). */
static int vdi_check(struct vhd_image *img, struct vhd_diag *d)
{
  const struct vdi *v = img->priv;
  unsigned shift = 0;
  while ((1ull << shift) < v->block_size)
    shift++;
  struct claims used;
  int r = claims_init(&used, v->file_size - v->data_offset, shift);
  if (r == -E2BIG)
    diag_info(d, "%s: too many blocks to check for shared ones", img->path);
  if (r < 0)
    return r == -E2BIG ? 0 : vhd_error(ENOMEM, "%s: out of memory checking", img->path);
  for (uint64_t b = 0; b < v->blocks; b++) {
    uint32_t e = v->map[b];
    if (e != BLOCK_FREE && e != BLOCK_ZERO && !claims_take(&used, (uint64_t)e << shift, 1))
      diag_corrupt(d, "%s: VDI block map entry %llu: file block %u is used by another entry too",
                   img->path, (unsigned long long)b, e);
  }
  claims_free(&used);
  return 0;
}

static void vdi_info(struct vhd_image *img, struct vhd_info *info)
{
  const struct vdi *v = img->priv;
  info->block_size = (uint32_t)v->block_size;
  info->total_blocks = v->blocks;
  for (uint64_t b = 0; b < v->blocks; b++)
    info->allocated_blocks += v->map[b] != BLOCK_FREE && v->map[b] != BLOCK_ZERO;
  info->physical_sector_size = VDI_SECTOR;
  vhd_snprintf(info->creator, sizeof info->creator, "VDI version %u.%u", v->version >> 16,
               v->version & 0xFFFFu);
  memcpy(info->id, v->uuid, sizeof info->id);
}

const struct vhd_driver vhd_driver_vdi = {
  .name = "vdi",
  .format = VHD_FORMAT_VDI,
  .probe = vdi_probe,
  .open = vdi_open,
  .close = vdi_close,
  .read = vdi_read,
  .block_status = vdi_block_status,
  .host_extent = vdi_host_extent,
  .info = vdi_info,
  .check = vdi_check,
};
