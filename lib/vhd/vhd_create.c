/* SPDX-License-Identifier: BSD-3-Clause */
/* Writing a new, empty VHD: fixed, dynamic or differencing. */
#include "vhd/vhd_priv.h"

#include "error.h"
#include "util/path.h"
#include "util/strfmt.h"
#include "util/utf16.h"
#include "util/arith.h"

#define SECTOR VHD_SECTOR_SIZE
#define HEADER_OFFSET 512u
#define TABLE_OFFSET (HEADER_OFFSET + VHD_HEADER_SIZE)

/* The identity written into every new image. Creator "win " with version
 * 10.0 and host "Wi2k" is what Windows itself writes. It is a deliberate
 * choice over an honest creator of our own: readers such as qemu 7.2 size
 * a disk from an unknown creator by its CHS geometry, which rounds down,
 * so they would see a smaller disk than we wrote. For "win " every
 * reader uses current_size, the exact size asked for. In Virtual PC
 * compatible mode the size is a CHS product and the creator is "vpc "
 * (version 5.3, Virtual PC 2007), so geometry and size agree for all. */
static void init_footer(struct vhd_footer *f, enum vhd_disk_type type, uint64_t size,
                        bool chs_mode)
{
  memset(f, 0, sizeof *f);
  memcpy(f->cookie, VHD_FOOTER_COOKIE, 8);
  f->features = VHD_FEATURE_RESERVED;
  f->version = VHD_VERSION_1_0;
  f->data_offset = type == VHD_TYPE_FIXED ? VHD_DATA_OFFSET_NONE : HEADER_OFFSET;
  uint64_t now = vhd_time_now();
  f->timestamp = now > VHD_EPOCH_OFFSET ? (uint32_t)(now - VHD_EPOCH_OFFSET) : 0;
  if (chs_mode) {
    memcpy(f->creator_app, "vpc ", 4);
    f->creator_version = 0x00050003;
  } else {
    memcpy(f->creator_app, "win ", 4);
    f->creator_version = 0x000a0000;
  }
  memcpy(f->creator_host, "Wi2k", 4);
  f->original_size = size;
  f->current_size = size;
  vhd_chs_from_sectors(size / SECTOR, &f->cylinders, &f->heads, &f->sectors_per_track);
  f->disk_type = type;
  vhd_uuid_generate(f->unique_id);
}

static int write_footer(vhd_io *io, const struct vhd_footer *f, uint64_t pos)
{
  uint8_t buf[VHD_FOOTER_SIZE];
  vhd_footer_encode(f, buf);
  return io_pwrite(io, buf, sizeof buf, pos);
}

/* '/' -> '\' in place. */
static void to_backslashes(char *p)
{
  for (; *p; p++)
    if (*p == '/')
      *p = '\\';
}

/* W2ru form: ".\parent.vhd" or "..\dir\parent.vhd". */
static char *stored_relative(const char *rel)
{
  bool up = rel[0] == '.' && rel[1] == '.' && (rel[2] == '/' || rel[2] == 0);
  bool dot = rel[0] == '.' && rel[1] == '/';
  size_t n = strlen(rel);
  char *out = vhd_malloc(n + 3);
  if (!out)
    return NULL;
  if (up || dot)
    memcpy(out, rel, n + 1);
  else
    vhd_snprintf(out, n + 3, "./%s", rel);
  to_backslashes(out);
  return out;
}

/* MacX form: a file:// URL; '%', blanks and control bytes are escaped so
 * the URL decodes back to the same bytes. Other UTF-8 stays as it is. */
static char *stored_url(const char *abs)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(abs);
  char *out = vhd_malloc(7 + 3 * n + 1), *o = out;
  if (!out)
    return NULL;
  memcpy(o, "file://", 7);
  o += 7;
  for (const unsigned char *p = (const unsigned char *)abs; *p; p++) {
    if (*p <= 0x20 || *p == 0x7f || *p == '%' || *p == '#' || *p == '?') {
      *o++ = '%';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    } else {
      *o++ = (char)*p;
    }
  }
  *o = 0;
  return out;
}

int vhd_link_parent(const char *path, struct vhd_dyn_header *h,
                    const struct parent_link *parent, struct vhd_locator_payload pl[3],
                    size_t *npl)
{
  const char *base = path_basename(parent->absolute ? parent->absolute : parent->image->path);
  char *stored[3] = {NULL, NULL, NULL};
  uint32_t codes[3] = {VHD_LOC_W2RU, VHD_LOC_W2KU, VHD_LOC_MACX};
  int r = 0;

  vhd_parent_identity(parent->image, h->parent_unique_id, &h->parent_timestamp);
  r = utf8_to_utf16(base, h->parent_unicode_name, VHD_PARENT_NAME_BYTES, true);
  if (r < 0)
    return vhd_error(-r, "%s: parent file name \"%s\" does not fit parent_unicode_name "
                         "(256 UTF-16 units)", path, base);

  if (parent->relative)
    stored[0] = stored_relative(parent->relative);
  if (parent->absolute) {
    stored[1] = vhd_strdup(parent->absolute);
    if (stored[1])
      to_backslashes(stored[1]);
    stored[2] = stored_url(parent->absolute);
  }
  *npl = 0;
  for (size_t i = 0; i < 3 && r >= 0; i++) {
    bool wanted = i == 0 ? parent->relative != NULL : parent->absolute != NULL;
    if (!wanted)
      continue;
    if (!stored[i]) {
      r = vhd_error(ENOMEM, "%s: out of memory writing parent locators", path);
      break;
    }
    size_t cap = 2 * strlen(stored[i]) + 2;
    uint8_t *buf = vhd_malloc(cap);
    if (!buf) {
      r = vhd_error(ENOMEM, "%s: out of memory writing parent locators", path);
      break;
    }
    r = vhd_locator_encode(codes[i], stored[i], buf, cap);
    if (r < 0) {
      vhd_free(buf);
      r = vhd_error(-r, "%s: cannot store parent path \"%s\" in a %s locator", path,
                    stored[i], vhd_locator_code_name(codes[i]));
      break;
    }
    pl[*npl].code = codes[i];
    pl[*npl].data = buf;
    pl[*npl].len = (size_t)r;
    (*npl)++;
  }
  for (size_t i = 0; i < 3; i++)
    vhd_free(stored[i]);
  if (r < 0) {
    for (size_t i = 0; i < *npl; i++)
      vhd_free(pl[i].data);
    *npl = 0;
    return r;
  }
  return 0;
}

/* An empty BAT: every entry unused, padded to whole sectors. */
static int write_empty_bat(vhd_io *io, uint64_t offset, uint64_t bytes)
{
  enum { CHUNK = 64 * 1024 };
  uint8_t *buf = vhd_malloc(CHUNK);
  int r = 0;
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory writing the BAT", io->name);
  memset(buf, 0xff, CHUNK);
  for (uint64_t done = 0; done < bytes && r == 0; done += CHUNK)
    r = io_pwrite(io, buf, bytes - done < CHUNK ? (size_t)(bytes - done) : CHUNK, offset + done);
  vhd_free(buf);
  return r;
}

static int create_sparse(vhd_io *io, const struct vhd_create_params *p,
                         const struct parent_link *parent, struct vhd_footer *f)
{
  struct vhd_dyn_header h;
  struct vhd_locator_payload pl[3];
  size_t npl = 0;
  uint8_t hbuf[VHD_HEADER_SIZE];
  uint32_t bs = p->block_size ? p->block_size : VHD_DEFAULT_BLOCK_SIZE;
  int r;

  if (bs < VHD_MIN_BLOCK_SIZE || bs > VHD_MAX_BLOCK_SIZE || (bs & (bs - 1)))
    return vhd_error(EINVAL, "%s: block size %u must be a power of two from 512 bytes to 256 MiB",
                     io->name, bs);
  uint64_t entries = (f->current_size + bs - 1) / bs;
  if (entries > VHD_MAX_BAT_ENTRIES) {
    uint64_t least = bs;
    while ((f->current_size + least - 1) / least > VHD_MAX_BAT_ENTRIES)
      least *= 2;
    return vhd_error(EINVAL, "%s: %llu blocks of %u bytes are more than the %u a VHD BAT may "
                     "hold; use a block size of at least %llu", io->name,
                     (unsigned long long)entries, bs, VHD_MAX_BAT_ENTRIES,
                     (unsigned long long)least);
  }

  memset(&h, 0, sizeof h);
  memcpy(h.cookie, VHD_HEADER_COOKIE, 8);
  h.data_offset = UINT64_MAX;
  h.table_offset = TABLE_OFFSET;
  h.version = VHD_HEADER_VERSION;
  h.max_table_entries = (uint32_t)entries;
  h.block_size = bs;
  if (parent && (r = vhd_link_parent(io->name, &h, parent, pl, &npl)) < 0)
    return r;

  /* Locator payloads follow the BAT, each in whole sectors; blocks will
   * come after them. data_space holds bytes (a multiple of 512), which
   * both the spec's sector reading and the common byte reading accept. */
  uint64_t pos = TABLE_OFFSET + vhd_bat_padded_bytes(h.max_table_entries);
  for (size_t i = 0; i < npl; i++) {
    uint64_t space = align_up(pl[i].len ? pl[i].len : 1, SECTOR);
    h.loc[i].code = pl[i].code;
    h.loc[i].data_space = (uint32_t)space;
    h.loc[i].data_length = (uint32_t)pl[i].len;
    h.loc[i].data_offset = pos;
    pos += space;
  }

  vhd_header_encode(&h, hbuf);
  r = io_pwrite(io, hbuf, sizeof hbuf, HEADER_OFFSET);
  if (r == 0)
    r = write_empty_bat(io, TABLE_OFFSET, vhd_bat_padded_bytes(h.max_table_entries));
  for (size_t i = 0; i < npl && r == 0; i++) {
    /* Pad each payload with zeros to its sector boundary. */
    uint64_t space = h.loc[i].data_space;
    uint8_t *buf = vhd_calloc(1, space);
    if (!buf) {
      r = vhd_error(ENOMEM, "%s: out of memory writing parent locators", io->name);
      break;
    }
    memcpy(buf, pl[i].data, pl[i].len);
    r = io_pwrite(io, buf, space, h.loc[i].data_offset);
    vhd_free(buf);
  }
  for (size_t i = 0; i < npl; i++)
    vhd_free(pl[i].data);
  if (r == 0)
    r = write_footer(io, f, 0);
  if (r == 0)
    r = write_footer(io, f, pos);
  return r;
}

int vhd_fmt_create(vhd_io *io, const struct vhd_create_params *p,
                   const struct parent_link *parent)
{
  enum vhd_disk_type type = p->type == VHD_TYPE_NONE ? VHD_TYPE_DYNAMIC : p->type;
  bool chs_mode = (p->flags & VHD_CREATE_CHS_ROUND) != 0;
  struct vhd_footer f;
  uint64_t size, existing;
  int r;

  if (type != VHD_TYPE_FIXED && type != VHD_TYPE_DYNAMIC && type != VHD_TYPE_DIFFERENCING)
    return vhd_error(EINVAL, "%s: disk type %d is not fixed, dynamic or differencing", io->name,
                     (int)type);
  if ((type == VHD_TYPE_DIFFERENCING) != (parent != NULL))
    return vhd_error(EINVAL, "%s: %s", io->name,
                     parent ? "only a differencing image has a parent"
                            : "a differencing image needs a parent");
  if (p->logical_sector_size != 0 && p->logical_sector_size != SECTOR)
    return vhd_error(EINVAL, "%s: VHD has only 512-byte sectors (asked for %u)", io->name,
                     p->logical_sector_size);
  if ((r = io_get_size(io, &existing)) < 0)
    return r;
  if (existing != 0)
    return vhd_error(EINVAL, "%s: file to create the image in is not empty", io->name);

  size = p->size;
  if (size == 0 && parent)
    size = parent->image->virtual_size;
  if (size == 0)
    return vhd_error(EINVAL, "%s: virtual size must not be 0", io->name);
  if (size > VHD_MAX_VIRTUAL_SIZE)
    return vhd_error(EFBIG, "%s: virtual size %llu exceeds the VHD limit of 2040 GiB", io->name,
                     (unsigned long long)size);
  size = align_up(size, SECTOR);
  if (chs_mode)
    size = vhd_chs_round_up(size / SECTOR) * SECTOR;
  if (size > VHD_MAX_VIRTUAL_SIZE)
    return vhd_error(EFBIG, "%s: virtual size %llu (rounded to a CHS geometry) exceeds the "
                            "VHD limit of 2040 GiB", io->name, (unsigned long long)size);

  init_footer(&f, type, size, chs_mode);
  if (type == VHD_TYPE_FIXED) {
    /* The data area becomes a hole: no zeros are written. */
    r = io_set_size(io, size);
    if (r == 0)
      r = write_footer(io, &f, size);
  } else {
    r = create_sparse(io, p, parent, &f);
  }
  if (r == 0)
    r = io_flush(io);
  return r;
}
