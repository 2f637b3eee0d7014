/* SPDX-License-Identifier: BSD-3-Clause */
/* Platform profiles: the rules Azure, Hyper-V and Virtual PC put on an
 * image beyond what the formats require, checked on an image (each broken
 * rule reported by its name, "profile.rule: what is wrong") or met by the
 * parameters of a new image. Sources: the format reference
 * (shared/reference/vhd-vhdx-format.md, sections 1.4, 1.5, 1.7, 2.1, 2.4).
 * Only the public view of an image is used (vhd_get_info, vhd_map), so a
 * profile sees what any program would. */
#include "error.h"
#include "image.h"
#include "sized.h"
#include "util/strfmt.h"
#include "vhd/footer.h"

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)

/* Azure page blobs (reference 1.5, Storage Explorer's upload limits):
 * 20 MiB to 32 TiB of virtual disk. */
#define AZURE_MIN_SIZE (20 * MiB)
#define AZURE_MAX_SIZE (32 * TiB)
/* Microsoft's VHD ceiling (0xFF000000 sectors), which Hyper-V enforces
 * for every VHD type. */
#define VHD_MAX_SIZE (2040 * GiB)
/* The largest CHS geometry, 65535/16/255: the most an ATA disk of Virtual
 * PC can show (the "127 GiB" limit). */
#define CHS_MAX_BYTES (65535ull * 16 * 255 * 512)
/* Hyper-V makes 2 MiB blocks in a dynamic VHD. */
#define HYPERV_VHD_BLOCK (2 * MiB)
/* Where Hyper-V puts the data of a VHD block (an "aligned" VHD) and where
 * VHDX puts every payload block. */
#define HYPERV_VHD_ALIGN 4096u
#define VHDX_ALIGN MiB

static const char *const names[] = {
  [VHD_PROFILE_AZURE] = "azure",
  [VHD_PROFILE_HYPERV] = "hyperv",
  [VHD_PROFILE_VIRTUALPC] = "virtualpc",
};

const char *vhd_profile_name(enum vhd_profile profile)
{
  if ((unsigned)profile >= sizeof names / sizeof names[0])
    return NULL;
  return names[profile];
}

int vhd_profile_from_name(const char *name, enum vhd_profile *out)
{
  for (unsigned i = 1; i < sizeof names / sizeof names[0]; i++)
    if (name && strcmp(name, names[i]) == 0) {
      *out = (enum vhd_profile)i;
      return 0;
    }
  return vhd_error(EINVAL, "unknown profile '%s' (azure, hyperv or virtualpc)",
                   name ? name : "");
}

/* ------------------------------------------------------------------ */
/* Checking                                                            */

struct rules {
  vhd_image *img;
  struct vhd_info info;
  vhd_check_report_fn report;
  void *opaque;
  unsigned broken;
};

static void broken(struct rules *r, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "rule: what is wrong", as a corruption-level finding of the check. */
static void broken(struct rules *r, const char *rule, const char *fmt, ...)
{
  char msg[512];
  vhd_snprintf(msg, sizeof msg, "%s: ", rule);
  size_t used = strlen(msg);
  va_list ap;
  va_start(ap, fmt);
  vhd_vsnprintf(msg + used, sizeof msg - used, fmt, ap);
  va_end(ap);
  r->broken++;
  if (r->report)
    r->report(r->opaque, VHD_CHECK_CORRUPTION, msg);
}

static unsigned long long ull(uint64_t v) { return (unsigned long long)v; }

/* The first data block of this layer whose start in the file is not a
 * multiple of align: a block's data starts at host - (offset % block). */
struct align_scan {
  uint32_t block_size;
  uint64_t align;
  uint64_t misaligned;       /* blocks found */
  uint64_t first_block, first_host;
  bool seen;
  uint64_t last_block;       /* the block of the previous extent */
};

static int scan_extent(void *opaque, const struct vhd_extent *e)
{
  struct align_scan *a = opaque;
  if (e->depth != 0 || e->layer != 0 || !(e->status & VHD_STATUS_DATA) ||
      e->host_offset == UINT64_MAX || !a->block_size)
    return 0;
  /* An extent may span several blocks that are contiguous in the file;
   * each block start inside it is then aligned iff the first one is
   * (block sizes are multiples of the alignment). */
  uint64_t block = e->offset / a->block_size;
  uint64_t start = e->host_offset - e->offset % a->block_size;
  /* Host holes split a block into several extents: count it once. */
  if (a->seen && block == a->last_block)
    return 0;
  a->seen = true;
  a->last_block = block;
  if (start % a->align) {
    if (!a->misaligned) {
      a->first_block = e->offset / a->block_size;
      a->first_host = start;
    }
    a->misaligned++;
  }
  return 0;
}

static int check_alignment(struct rules *r, const char *rule, uint64_t align)
{
  struct align_scan a = { .block_size = r->info.block_size, .align = align };
  if (!r->info.block_size || r->info.virtual_size == 0)
    return 0;
  int rc = vhd_map(r->img, 0, r->info.virtual_size, scan_extent, &a);
  if (rc < 0)
    return rc;
  if (a.misaligned)
    broken(r, rule, "the data of block %llu starts at file offset %llu, not a multiple of "
           "%llu (%llu block%s misaligned)", ull(a.first_block), ull(a.first_host),
           ull(align), ull(a.misaligned), a.misaligned == 1 ? "" : "s");
  return 0;
}

static void check_azure(struct rules *r)
{
  const struct vhd_info *i = &r->info;
  if (i->format != VHD_FORMAT_VHD)
    broken(r, "azure.format-vhd", "the image is %s; Azure takes VHD only",
           vhd_format_name(i->format));
  if (i->type != VHD_TYPE_FIXED)
    broken(r, "azure.type-fixed", "the image is %s; Azure takes fixed VHDs only",
           i->type == VHD_TYPE_NONE ? "raw" : vhd_type_name(i->type));
  if (i->virtual_size % MiB)
    broken(r, "azure.size-whole-mib", "virtual size %llu bytes is not a whole number of MiB",
           ull(i->virtual_size));
  if (i->virtual_size < AZURE_MIN_SIZE || i->virtual_size > AZURE_MAX_SIZE)
    broken(r, "azure.size-limits", "virtual size %llu bytes is outside Azure's limits "
           "(%llu bytes = 20 MiB to %llu bytes = 32 TiB)", ull(i->virtual_size),
           ull(AZURE_MIN_SIZE), ull(AZURE_MAX_SIZE));
  /* A fixed VHD is its data followed by one footer: any other length
   * means a footer copy in front, a 511-byte footer, or trailing bytes. */
  if (i->format == VHD_FORMAT_VHD && i->type == VHD_TYPE_FIXED &&
      i->file_size != i->virtual_size + 512)
    broken(r, "azure.footer-at-end-only", "file size %llu bytes is not the virtual size "
           "plus one 512-byte footer (%llu bytes)", ull(i->file_size),
           ull(i->virtual_size + 512));
}

static int check_hyperv(struct rules *r)
{
  const struct vhd_info *i = &r->info;
  if (i->format == VHD_FORMAT_VHD) {
    if (i->virtual_size > VHD_MAX_SIZE)
      broken(r, "hyperv.vhd-size-max", "virtual size %llu bytes is over the 2040 GiB "
             "(%llu bytes) Hyper-V allows for a VHD", ull(i->virtual_size), ull(VHD_MAX_SIZE));
    if (i->type != VHD_TYPE_FIXED && i->block_size != HYPERV_VHD_BLOCK)
      broken(r, "hyperv.vhd-block-size", "block size %u bytes is not the 2 MiB Hyper-V uses "
             "for a VHD", i->block_size);
    if (i->type != VHD_TYPE_FIXED)
      return check_alignment(r, "hyperv.vhd-block-aligned", HYPERV_VHD_ALIGN);
    return 0;
  }
  if (i->format != VHD_FORMAT_VHDX) {
    broken(r, "hyperv.format", "the image is %s; Hyper-V takes VHD or VHDX",
           vhd_format_name(i->format));
    return 0;
  }
  uint32_t bs = i->block_size;
  if (bs < MiB || bs > 256 * MiB || (bs & (bs - 1)))
    broken(r, "hyperv.vhdx-block-size", "block size %u bytes is not a power of two from "
           "1 MiB to 256 MiB", bs);
  if (!sector_size_valid(i->logical_sector_size))
    broken(r, "hyperv.sector-size", "logical sector size %u is not 512 or 4096",
           i->logical_sector_size);
  if (!sector_size_valid(i->physical_sector_size))
    broken(r, "hyperv.sector-size", "physical sector size %u is not 512 or 4096",
           i->physical_sector_size);
  vhd_image *parent = vhd_get_parent(r->img);
  struct vhd_info pi;
  if (parent && vhd_get_info(parent, &pi) == 0 &&
      pi.logical_sector_size != i->logical_sector_size)
    broken(r, "hyperv.chain-sector-size", "logical sector size %u differs from the "
           "parent's %u (%s)", i->logical_sector_size, pi.logical_sector_size, pi.path);
  return check_alignment(r, "hyperv.vhdx-block-aligned", VHDX_ALIGN);
}

static void check_virtualpc(struct rules *r)
{
  const struct vhd_info *i = &r->info;
  if (i->format != VHD_FORMAT_VHD) {
    broken(r, "virtualpc.format-vhd", "the image is %s; Virtual PC takes VHD only",
           vhd_format_name(i->format));
    return;
  }
  if (i->virtual_size > CHS_MAX_BYTES)
    broken(r, "virtualpc.size-max", "virtual size %llu bytes is over the %llu bytes "
           "(about 127 GiB) the largest CHS geometry addresses", ull(i->virtual_size),
           ull(CHS_MAX_BYTES));
  uint64_t chs = vhd_chs_product(i->cylinders, i->heads, i->sectors_per_track) * 512;
  if (chs != i->virtual_size)
    broken(r, "virtualpc.size-chs-exact", "virtual size %llu bytes is not the geometry's "
           "%u/%u/%u = %llu bytes (Virtual PC shows the guest only the geometry)",
           ull(i->virtual_size), i->cylinders, i->heads, i->sectors_per_track, ull(chs));
  uint16_t c;
  uint8_t h, s;
  vhd_chs_from_sectors(i->virtual_size / 512, &c, &h, &s);
  if (c != i->cylinders || h != i->heads || s != i->sectors_per_track)
    broken(r, "virtualpc.geometry", "geometry %u/%u/%u is not the %u/%u/%u the VHD "
           "specification gives for %llu sectors", i->cylinders, i->heads,
           i->sectors_per_track, c, h, s, ull(i->virtual_size / 512));
}

int vhd_profile_check(vhd_image *img, enum vhd_profile profile, vhd_check_report_fn report,
                      void *opaque, unsigned *violations)
{
  vhd_error_clear();
  struct rules r = { .img = img, .report = report, .opaque = opaque };
  if (!vhd_profile_name(profile) || profile == 0)
    return vhd_error(EINVAL, "%s: unknown profile %d", img->path, (int)profile);
  int rc = vhd_get_info(img, &r.info);
  if (rc < 0)
    return rc;
  switch (profile) {
  case VHD_PROFILE_AZURE:
    check_azure(&r);
    break;
  case VHD_PROFILE_HYPERV:
    rc = check_hyperv(&r);
    break;
  case VHD_PROFILE_VIRTUALPC:
    check_virtualpc(&r);
    break;
  }
  if (violations)
    *violations = r.broken;
  return rc;
}

/* ------------------------------------------------------------------ */
/* Meeting the rules on a new image                                    */

int profile_apply(enum vhd_profile profile, uint64_t src_size,
                  struct vhd_create_params *p)
{
  vhd_error_clear();
  uint64_t size = p->size ? p->size : src_size;
  switch (profile) {
  case VHD_PROFILE_AZURE:
    /* Up, never down: the copy must hold every byte of the source. */
    if (size > AZURE_MAX_SIZE)
      return vhd_error(EFBIG, "profile azure: size %llu bytes is over Azure's 32 TiB",
                       ull(size));
    size = (size + MiB - 1) / MiB * MiB;
    if (size < AZURE_MIN_SIZE)
      size = AZURE_MIN_SIZE;
    p->format = VHD_FORMAT_VHD;
    p->type = VHD_TYPE_FIXED;
    p->size = size;
    p->block_size = 0;
    p->flags &= ~VHD_CREATE_CHS_ROUND;
    return 0;
  case VHD_PROFILE_HYPERV:
    if (p->format == VHD_FORMAT_VHD) {
      if (size > VHD_MAX_SIZE)
        return vhd_error(EFBIG, "profile hyperv: size %llu bytes is over the 2040 GiB of a "
                         "VHD", ull(size));
      if (p->block_size && p->block_size != HYPERV_VHD_BLOCK)
        return vhd_error(EINVAL, "profile hyperv: a VHD's block size must be 2 MiB, not %u",
                         p->block_size);
      /* The VHD writer puts every new block's data on a 4 KiB boundary,
       * as Hyper-V does. */
      p->block_size = p->type == VHD_TYPE_FIXED ? 0 : HYPERV_VHD_BLOCK;
    } else if (p->format == VHD_FORMAT_VHDX) {
      uint32_t bs = p->block_size;
      if (bs && (bs < MiB || bs > 256 * MiB || (bs & (bs - 1))))
        return vhd_error(EINVAL, "profile hyperv: block size %u is not a power of two from "
                         "1 MiB to 256 MiB", bs);
    } else {
      return vhd_error(EINVAL, "profile hyperv: the output must be VHD or VHDX");
    }
    return 0;
  case VHD_PROFILE_VIRTUALPC:
    if (size > CHS_MAX_BYTES)
      return vhd_error(EFBIG, "profile virtualpc: size %llu bytes is over the %llu bytes "
                       "the largest CHS geometry addresses", ull(size), ull(CHS_MAX_BYTES));
    p->format = VHD_FORMAT_VHD;
    p->size = size;
    p->flags |= VHD_CREATE_CHS_ROUND;
    return 0;
  }
  return vhd_error(EINVAL, "unknown profile %d", (int)profile);
}
