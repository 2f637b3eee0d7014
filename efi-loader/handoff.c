/* SPDX-License-Identifier: BSD-3-Clause */
/* Building and publishing the OS hand-off record (docs/efi-handoff.md). */
#include "handoff.h"
#include "util/crc32.h"
#include "efi_io.h"
#include "error.h"
#include "util/endian.h"
#include "util/strfmt.h"

#define HEADER_SIZE 112u
#define LAYER_HEADER 40u
#define EXTENT_SIZE 24u
#define MAX_CHUNKS 64u

struct buf {
  uint8_t *p;
  size_t len, cap;
  bool failed;
};

static uint8_t *grow(struct buf *b, size_t n)
{
  if (b->failed)
    return NULL;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n)
      cap *= 2;
    uint8_t *p = vhd_realloc(b->p, cap);
    if (!p) {
      b->failed = true;
      return NULL;
    }
    b->p = p;
    b->cap = cap;
  }
  uint8_t *at = b->p + b->len;
  memset(at, 0, n);
  b->len += n;
  return at;
}

static void variable_name(unsigned index, CHAR16 *name)
{
  static const char base[] = "VhdBootHandoff";
  size_t i = 0;
  for (; base[i]; i++)
    name[i] = (CHAR16)base[i];
  if (index) {
    char digits[12];
    vhd_snprintf(digits, sizeof digits, "%u", index);
    for (size_t k = 0; digits[k]; k++)
      name[i++] = (CHAR16)digits[k];
  }
  name[i] = 0;
}

static void put_extent(uint8_t *e, uint64_t file_offset, uint64_t disk_offset, uint64_t length)
{
  put_le64(e, file_offset);
  put_le64(e + 8, disk_offset);
  put_le64(e + 16, length);
}

/* The file's extents as the OS must see them; writes them when e is not
 * NULL and returns their number. Unwritten extents, holes and the space
 * past a valid data length (NTFS, exFAT) read as zeros and must not be
 * written through the disk: they get no disk offset (docs/efi-handoff.md),
 * the extent that holds the valid data length being cut there. */
static size_t put_extents(uint8_t *e, const struct host_volume *vol, const struct efi_file *f)
{
  /* The slack after the file's end in its last cluster stays as mapped. */
  uint64_t valid = f->readable < f->phys_size ? f->readable : UINT64_MAX;
  size_t n = 0;
  for (size_t i = 0; i < f->ext.count; i++) {
    const struct fsmap_extent *x = &f->ext.v[i];
    uint64_t cut = valid <= x->file_offset ? 0
                   : valid - x->file_offset < x->length ? valid - x->file_offset : x->length;
    if (cut) {
      if (e)
        put_extent(e + n * EXTENT_SIZE, x->file_offset,
                   x->state == FSMAP_DATA ? vol->start_bytes + x->volume_offset : UINT64_MAX,
                   cut);
      n++;
    }
    if (cut < x->length) {
      if (e)
        put_extent(e + n * EXTENT_SIZE, x->file_offset + cut, UINT64_MAX, x->length - cut);
      n++;
    }
  }
  return n;
}

static void add_layer(struct buf *b, const struct host_volume *vol, vhd_image *layer)
{
  struct vhd_info info;
  if (vhd_get_info(layer, &info) < 0) {
    b->failed = true;
    return;
  }
  struct efi_file *f = efi_file_find(info.path);
  size_t path_len = strlen(info.path);
  size_t padded = (path_len + 7) / 8 * 8;
  size_t extents = f && f->mode == EFI_FILE_MAPPED ? put_extents(NULL, vol, f) : 0;
  size_t at = b->len;
  uint8_t *h = grow(b, LAYER_HEADER + padded + extents * EXTENT_SIZE);
  if (!h)
    return;
  put_le32(h, (uint32_t)(LAYER_HEADER + padded + extents * EXTENT_SIZE));
  h[4] = (uint8_t)info.format;
  h[5] = (uint8_t)info.type;
  put_le16(h + 6, (uint16_t)path_len);
  /* The logical size as of now; the record in the file stays the
   * authority (docs/efi-handoff.md, "Reserve"). */
  struct vhd_reserve rs;
  bool reserved = vhd_get_reserve(layer, &rs) == 0;
  put_le64(h + 8, reserved ? rs.logical_size : info.file_size);
  put_le64(h + 16, reserved ? rs.physical_size : f ? f->phys_size : info.file_size);
  put_le32(h + 24, (uint32_t)extents);
  put_le32(h + 28, f && f->mode == EFI_FILE_MEMORY ? 1 : 0);
  put_le64(h + 32, info.virtual_size);
  memcpy(h + LAYER_HEADER, info.path, path_len);
  if (extents)
    put_extents(b->p + at + LAYER_HEADER + padded, vol, f);
}

int handoff_publish(const struct host_volume *vol, vhd_image *img, enum boot_mode mode,
                    uint32_t block_size)
{
  struct buf b = { 0 };
  uint8_t *h = grow(&b, HEADER_SIZE);
  unsigned layers = 0;
  for (vhd_image *l = img; l; l = vhd_get_parent(l)) {
    add_layer(&b, vol, l);
    layers++;
  }
  if (b.failed || !h) {
    vhd_free(b.p);
    return vhd_error(ENOMEM, "out of memory building the hand-off record");
  }
  h = b.p;
  struct vhd_info top;
  vhd_get_info(img, &top);
  memcpy(h, "VHDBHOFF", 8);
  put_le16(h + 8, 1);                      /* version */
  put_le16(h + 10, HEADER_SIZE);
  put_le32(h + 12, (uint32_t)b.len);
  put_le32(h + 20, (uint32_t)(mode == MODE_RO ? 0 : mode == MODE_COW ? 1 : 2));
  put_le32(h + 24, layers);
  put_le32(h + 28, block_size);
  put_le64(h + 32, top.virtual_size);
  memcpy(h + 40, vol->disk_guid, 16);
  put_le32(h + 56, vol->has_hd ? vol->hd.PartitionNumber : 0);
  put_le32(h + 60, vol->disk_block_size);
  put_le64(h + 64, vol->start_bytes);
  put_le64(h + 72, vol->size);
  if (vol->has_hd)
    memcpy(h + 80, vol->hd.Signature, 16);
  h[96] = vol->has_hd ? vol->hd.MBRType : 0;
  h[97] = vol->mapped ? (uint8_t)vol->map.kind : 0;
  put_le32(h + 16, crc32_of(b.p, b.len));

  unsigned chunks = (unsigned)((b.len + HANDOFF_CHUNK - 1) / HANDOFF_CHUNK);
  if (chunks > MAX_CHUNKS) {
    vhd_free(b.p);
    return vhd_error(E2BIG, "the hand-off record (%zu bytes) is too big: the image is too "
                     "fragmented on the host", b.len);
  }
  handoff_withdraw();
  EFI_STATUS st = EFI_SUCCESS;
  for (unsigned i = 0; i < chunks && st == EFI_SUCCESS; i++) {
    CHAR16 name[32];
    variable_name(i, name);
    size_t off = (size_t)i * HANDOFF_CHUNK;
    size_t n = b.len - off < HANDOFF_CHUNK ? b.len - off : HANDOFF_CHUNK;
    st = efi_rt->SetVariable(name, &guid_vhdboot,
                             EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS, n,
                             b.p + off);
  }
  vhd_free(b.p);
  if (st != EFI_SUCCESS) {
    handoff_withdraw();
    return vhd_error(efi_errno(st), "cannot publish the hand-off variables: %s",
                     efi_status_text(st));
  }
  return 0;
}

void handoff_withdraw(void)
{
  for (unsigned i = 0; i < MAX_CHUNKS; i++) {
    CHAR16 name[32];
    variable_name(i, name);
    if (efi_rt->SetVariable(name, &guid_vhdboot, 0, 0, NULL) != EFI_SUCCESS && i > 0)
      break;
  }
}
