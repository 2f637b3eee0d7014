/* SPDX-License-Identifier: BSD-3-Clause */
/* Finding and opening the host partition. */
#include "host_volume.h"
#include "devpath.h"
#include "error.h"
#include "util/endian.h"
#include "util/guid.h"
#include "util/strfmt.h"

int host_volume_read(struct host_volume *v, uint64_t off, void *buf, size_t len)
{
  EFI_STATUS st = v->dio->ReadDisk(v->dio, v->media_id, off, len, buf);
  return st == EFI_SUCCESS ? 0 : -efi_errno(st);
}

int host_volume_write(struct host_volume *v, uint64_t off, const void *buf, size_t len)
{
  EFI_STATUS st = v->dio->WriteDisk(v->dio, v->media_id, off, len, (void *)buf);
  return st == EFI_SUCCESS ? 0 : -efi_errno(st);
}

int host_volume_flush(struct host_volume *v)
{
  EFI_STATUS st = v->bio->FlushBlocks(v->bio);
  return st == EFI_SUCCESS || st == EFI_UNSUPPORTED ? 0 : -efi_errno(st);
}

/* gnu-efi's HARDDRIVE_DEVICE_PATH is not packed: the node on the wire is 42
 * bytes, the struct 48 (trailing padding; the fields line up). */
#define HD_NODE_LEN 42

static int map_read(void *ctx, uint64_t off, void *buf, size_t len)
{
  return host_volume_read(ctx, off, buf, len);
}

/* The HD() node at the end of the partition's path tells where it is; the
 * GPT header of the whole disk gives the disk GUID for the hand-off. */
static void locate_on_disk(struct host_volume *v)
{
  EFI_DEVICE_PATH *last = dp_last_node(v->dp);
  if (!last || last->Type != MEDIA_DEVICE_PATH || last->SubType != MEDIA_HARDDRIVE_DP ||
      DP_LEN(last) < HD_NODE_LEN)
    return;
  memcpy(&v->hd, last, HD_NODE_LEN);
  v->has_hd = true;
  EFI_DEVICE_PATH *disk_dp = dp_parent(v->dp);
  if (!disk_dp)
    return;
  EFI_DEVICE_PATH *rest = disk_dp;
  EFI_HANDLE disk;
  EFI_BLOCK_IO *bio;
  if (efi_bs->LocateDevicePath(&guid_block_io, &rest, &disk) == EFI_SUCCESS &&
      DP_IS_END(rest) &&
      efi_bs->HandleProtocol(disk, &guid_block_io, (void **)&bio) == EFI_SUCCESS) {
    v->disk_block_size = bio->Media->BlockSize;
    v->start_bytes = v->hd.PartitionStart * bio->Media->BlockSize;
    uint8_t *hdr = vhd_malloc(bio->Media->BlockSize);
    if (hdr && v->hd.MBRType == MBR_TYPE_EFI_PARTITION_TABLE_HEADER &&
        bio->ReadBlocks(bio, bio->Media->MediaId, 1, bio->Media->BlockSize, hdr) == EFI_SUCCESS &&
        memcmp(hdr, "EFI PART", 8) == 0)
      memcpy(v->disk_guid, hdr + 56, 16);
    vhd_free(hdr);
  }
  vhd_free(disk_dp);
}

static int open_handle(EFI_HANDLE h, struct host_volume *v, const char *what)
{
  memset(v, 0, sizeof *v);
  v->handle = h;
  vhd_snprintf(v->name, sizeof v->name, "%s", what);
  EFI_DEVICE_PATH *dp;
  if (efi_bs->HandleProtocol(h, &guid_block_io, (void **)&v->bio) != EFI_SUCCESS ||
      efi_bs->HandleProtocol(h, &guid_device_path, (void **)&dp) != EFI_SUCCESS)
    return vhd_error(ENXIO, "%s: no block device", what);
  if (efi_bs->HandleProtocol(h, &guid_disk_io, (void **)&v->dio) != EFI_SUCCESS) {
    /* DiskIo binds to every BlockIo once connected; firmware that did not
     * connect everything at boot gets asked now. */
    efi_bs->ConnectController(h, NULL, NULL, FALSE);
    if (efi_bs->HandleProtocol(h, &guid_disk_io, (void **)&v->dio) != EFI_SUCCESS)
      return vhd_error(ENXIO, "%s: the firmware offers no DiskIo on it", what);
  }
  if (!v->bio->Media->MediaPresent)
    return vhd_error(ENXIO, "%s: no media", what);
  v->media_id = v->bio->Media->MediaId;
  v->size = (v->bio->Media->LastBlock + 1) * v->bio->Media->BlockSize;
  v->dp = dp_dup(dp);
  if (!v->dp)
    return vhd_error(ENOMEM, "out of memory");
  if (efi_bs->HandleProtocol(h, &guid_simple_fs, (void **)&v->sfs) != EFI_SUCCESS)
    v->sfs = NULL;
  locate_on_disk(v);
  if (v->has_hd)
    vhd_snprintf(v->name, sizeof v->name, "partition %u", v->hd.PartitionNumber);
  int r = fsmap_mount(&v->map, map_read, v, v->size);
  if (r == 0) {
    v->mapped = true;
    size_t n = strlen(v->name);
    vhd_snprintf(v->name + n, sizeof v->name - n, " (%s)", fsmap_kind_name(v->map.kind));
  } else if (r != -ENOTSUP) {
    /* It claims to be FAT or exFAT but is damaged: the firmware's driver
     * may still read it, so this only matters if nothing else can. */
    fsmap_unmount(&v->map);
    if (!v->sfs)
      return vhd_error(-r, "%s: %s", v->name, v->map.error);
  }
  return 0;
}

void host_volume_close(struct host_volume *v)
{
  if (v->mapped)
    fsmap_unmount(&v->map);
  vhd_free(v->dp);
  memset(v, 0, sizeof *v);
}

static bool parse_number(const char *s, unsigned long *out)
{
  unsigned long v = 0;
  if (!*s)
    return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > 100000)
      return false;
    v = v * 10 + (unsigned long)(*s - '0');
  }
  *out = v;
  return true;
}

int host_volume_select(EFI_HANDLE dev, const char *spec, struct host_volume *out)
{
  if (!spec || !*spec)
    return open_handle(dev, out, "the loader's volume");

  unsigned long number = 0;
  uint8_t guid[16];
  bool by_number = parse_number(spec, &number);
  if (!by_number && !guid_parse_ms(spec, guid))
    return vhd_error(EINVAL, "partition=%s: expected a partition number or a GPT partition "
                     "GUID", spec);
  EFI_DEVICE_PATH *own;
  if (efi_bs->HandleProtocol(dev, &guid_device_path, (void **)&own) != EFI_SUCCESS)
    return vhd_error(ENXIO, "partition=%s: the loader's volume has no device path", spec);
  EFI_DEVICE_PATH *last = dp_last_node(own);
  if (!last || last->Type != MEDIA_DEVICE_PATH || last->SubType != MEDIA_HARDDRIVE_DP)
    return vhd_error(ENXIO, "partition=%s: the loader was not started from a partition",
                     spec);
  EFI_DEVICE_PATH *disk = dp_parent(own);
  if (!disk)
    return vhd_error(ENOMEM, "out of memory");
  size_t disk_len = dp_size(disk) - 4;

  UINTN count = 0;
  EFI_HANDLE *handles = NULL;
  int r = vhd_error(ENOENT, "partition=%s: no such partition on the loader's disk", spec);
  if (efi_bs->LocateHandleBuffer(ByProtocol, &guid_block_io, NULL, &count, &handles) ==
      EFI_SUCCESS) {
    for (UINTN i = 0; i < count; i++) {
      EFI_DEVICE_PATH *dp;
      if (efi_bs->HandleProtocol(handles[i], &guid_device_path, (void **)&dp) != EFI_SUCCESS ||
          !dp_starts_with(dp, disk) || dp_size(dp) - 4 == disk_len)
        continue;
      EFI_DEVICE_PATH *node = (EFI_DEVICE_PATH *)((UINT8 *)dp + disk_len);
      if (node->Type != MEDIA_DEVICE_PATH || node->SubType != MEDIA_HARDDRIVE_DP ||
          !DP_IS_END(DP_NEXT(node)))
        continue;
      HARDDRIVE_DEVICE_PATH hd;
      memset(&hd, 0, sizeof hd);
      if (DP_LEN(node) < HD_NODE_LEN)
        continue;
      memcpy(&hd, node, HD_NODE_LEN);
      bool match = by_number ? hd.PartitionNumber == number
                             : hd.SignatureType == SIGNATURE_TYPE_GUID &&
                                   memcmp(hd.Signature, guid, 16) == 0;
      if (match) {
        char what[40];
        vhd_snprintf(what, sizeof what, "partition %s", spec);
        r = open_handle(handles[i], out, what);
        break;
      }
    }
    efi_bs->FreePool(handles);
  }
  vhd_free(disk);
  return r;
}
