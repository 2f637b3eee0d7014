/* SPDX-License-Identifier: BSD-3-Clause */
/* The virtual disk's BlockIo (see vdisk.h). */
#include "vdisk.h"
#include "console.h"
#include "error.h"
#include "overlay.h"
#include "platform.h"

#define VDISK_MEDIA_ID 0x56484442u   /* "VHDB"; constant, the medium never changes */

static struct vdisk *from_bio(EFI_BLOCK_IO_PROTOCOL *This)
{
  return (struct vdisk *)((UINT8 *)This - __builtin_offsetof(struct vdisk, bio));
}

/* Errors inside BlockIo cannot be returned with a message; show the first
 * few, so a failing boot says why. */
static void show_error(struct vdisk *vd, const char *what, EFI_LBA lba)
{
  if (vd->errors_shown >= 3)
    return;
  vd->errors_shown++;
  con_printf("vhdboot: %s at block %llu failed: %s\n", what, (unsigned long long)lba,
             vhd_last_error());
}

static EFI_STATUS check(struct vdisk *vd, UINT32 media_id, EFI_LBA lba, UINTN size, VOID *buf)
{
  if (media_id != vd->media.MediaId)
    return EFI_MEDIA_CHANGED;
  if (!buf)
    return EFI_INVALID_PARAMETER;
  if (size % vd->block_size)
    return EFI_BAD_BUFFER_SIZE;
  uint64_t n = size / vd->block_size;
  if (n && (lba > vd->media.LastBlock || n - 1 > vd->media.LastBlock - lba))
    return EFI_INVALID_PARAMETER;
  return EFI_SUCCESS;
}

static EFI_STATUS EFIAPI vd_reset(EFI_BLOCK_IO_PROTOCOL *This, BOOLEAN ext)
{
  (void)This;
  (void)ext;
  return EFI_SUCCESS;
}

static EFI_STATUS EFIAPI vd_read(EFI_BLOCK_IO_PROTOCOL *This, UINT32 media_id, EFI_LBA lba,
                                 UINTN size, VOID *buf)
{
  struct vdisk *vd = from_bio(This);
  EFI_STATUS st = check(vd, media_id, lba, size, buf);
  if (st != EFI_SUCCESS || size == 0)
    return st;
  uint32_t bs = vd->block_size;
  uint64_t n = size / bs;
  uint8_t *out = buf;
  if (!vd->ov || overlay_blocks(vd->ov) == 0) {
    if (vhd_pread(vd->img, out, size, lba * bs) < 0) {
      show_error(vd, "read", lba);
      return EFI_DEVICE_ERROR;
    }
    return EFI_SUCCESS;
  }
  /* Runs of blocks the overlay does not hold come from the image. */
  uint64_t i = 0;
  while (i < n) {
    const uint8_t *mine = overlay_get(vd->ov, lba + i);
    if (mine) {
      memcpy(out + i * bs, mine, bs);
      i++;
      continue;
    }
    uint64_t j = i + 1;
    while (j < n && !overlay_get(vd->ov, lba + j))
      j++;
    if (vhd_pread(vd->img, out + i * bs, (size_t)((j - i) * bs), (lba + i) * bs) < 0) {
      show_error(vd, "read", lba + i);
      return EFI_DEVICE_ERROR;
    }
    i = j;
  }
  return EFI_SUCCESS;
}

static EFI_STATUS EFIAPI vd_write(EFI_BLOCK_IO_PROTOCOL *This, UINT32 media_id, EFI_LBA lba,
                                  UINTN size, VOID *buf)
{
  struct vdisk *vd = from_bio(This);
  if (vd->media.ReadOnly)
    return media_id != vd->media.MediaId ? EFI_MEDIA_CHANGED : EFI_WRITE_PROTECTED;
  EFI_STATUS st = check(vd, media_id, lba, size, buf);
  if (st != EFI_SUCCESS || size == 0)
    return st;
  uint32_t bs = vd->block_size;
  if (vd->mode == MODE_COW) {
    for (uint64_t i = 0; i < size / bs; i++)
      if (overlay_put(vd->ov, lba + i, (const uint8_t *)buf + i * bs) < 0) {
        if (vd->errors_shown++ < 3)
          con_printf("vhdboot: out of memory for the copy-on-write overlay (%llu blocks "
                     "held)\n", (unsigned long long)overlay_blocks(vd->ov));
        return EFI_DEVICE_ERROR;
      }
    return EFI_SUCCESS;
  }
  /* rw: WriteCaching is FALSE, so a completed write must be durable: the
   * core's flush writes the metadata a new block needs (BAT, bitmaps) and
   * flushes the host disk. */
  if (vhd_pwrite(vd->img, buf, size, lba * bs) < 0) {
    show_error(vd, "write", lba);
    return vhd_last_errno() == ENOSPC ? EFI_VOLUME_FULL : EFI_DEVICE_ERROR;
  }
  if (vhd_flush(vd->img) < 0) {
    show_error(vd, "flush after a write", lba);
    return EFI_DEVICE_ERROR;
  }
  return EFI_SUCCESS;
}

static EFI_STATUS EFIAPI vd_flush(EFI_BLOCK_IO_PROTOCOL *This)
{
  struct vdisk *vd = from_bio(This);
  if (vd->mode == MODE_RW && vhd_flush(vd->img) < 0) {
    show_error(vd, "flush", 0);
    return EFI_DEVICE_ERROR;
  }
  return EFI_SUCCESS;
}

/* VenHw(guid_vhdboot, 4-byte instance) / VenMsg(guid_vhdboot_disk) / End.
 * Built byte by byte: gnu-efi's structs carry no packing guarantees. */
static EFI_DEVICE_PATH *make_path(uint32_t instance)
{
  UINT8 *p = vhd_calloc(1, 24 + 20 + 4);
  if (!p)
    return NULL;
  p[0] = HARDWARE_DEVICE_PATH;
  p[1] = HW_VENDOR_DP;
  p[2] = 24;
  memcpy(p + 4, &guid_vhdboot, 16);
  memcpy(p + 20, &instance, 4);
  p[24] = MESSAGING_DEVICE_PATH;
  p[25] = MSG_VENDOR_DP;
  p[26] = 20;
  memcpy(p + 28, &guid_vhdboot_disk, 16);
  p[44] = END_DEVICE_PATH_TYPE;
  p[45] = END_ENTIRE_DEVICE_PATH_SUBTYPE;
  p[46] = 4;
  return (EFI_DEVICE_PATH *)p;
}

int vdisk_create(vhd_image *img, enum boot_mode mode, uint32_t instance, struct vdisk **out)
{
  struct vhd_info info;
  int r = vhd_get_info(img, &info);
  if (r < 0)
    return r;
  struct vdisk *vd = vhd_calloc(1, sizeof *vd);
  if (!vd)
    return vhd_error(ENOMEM, "out of memory");
  vd->img = img;
  vd->mode = mode;
  /* Raw images have no sector size of their own (the core says 1). */
  vd->block_size = info.logical_sector_size >= 512 ? info.logical_sector_size : 512;
  if (info.virtual_size < vd->block_size) {
    vhd_free(vd);
    return vhd_error(EINVAL, "%s: a virtual disk of %llu bytes is too small to boot from",
                     info.path, (unsigned long long)info.virtual_size);
  }
  vd->media.MediaId = VDISK_MEDIA_ID;
  vd->media.RemovableMedia = FALSE;
  vd->media.MediaPresent = TRUE;
  vd->media.LogicalPartition = FALSE;
  vd->media.ReadOnly = mode == MODE_RO;
  vd->media.WriteCaching = FALSE;
  vd->media.BlockSize = vd->block_size;
  vd->media.IoAlign = 0;
  vd->media.LastBlock = info.virtual_size / vd->block_size - 1;
  vd->media.LowestAlignedLba = 0;
  vd->media.LogicalBlocksPerPhysicalBlock = 1;
  vd->media.OptimalTransferLengthGranularity = 0;
  vd->bio.Revision = EFI_BLOCK_IO_PROTOCOL_REVISION3;
  vd->bio.Media = &vd->media;
  vd->bio.Reset = vd_reset;
  vd->bio.ReadBlocks = vd_read;
  vd->bio.WriteBlocks = vd_write;
  vd->bio.FlushBlocks = vd_flush;
  vd->dp = make_path(instance);
  if (!vd->dp || (mode == MODE_COW && overlay_new(vd->block_size, &vd->ov) < 0)) {
    vdisk_free(vd);
    return vhd_error(ENOMEM, "out of memory");
  }
  *out = vd;
  return 0;
}

int vdisk_install(struct vdisk *vd)
{
  EFI_STATUS st = efi_bs->InstallProtocolInterface(&vd->handle, &guid_device_path,
                                                   EFI_NATIVE_INTERFACE, vd->dp);
  if (st == EFI_SUCCESS) {
    st = efi_bs->InstallProtocolInterface(&vd->handle, &guid_block_io, EFI_NATIVE_INTERFACE,
                                          &vd->bio);
    if (st != EFI_SUCCESS)
      efi_bs->UninstallProtocolInterface(vd->handle, &guid_device_path, vd->dp);
  }
  if (st != EFI_SUCCESS)
    return vhd_error(efi_errno(st), "cannot install the virtual disk: %s",
                     efi_status_text(st));
  vd->installed = true;
  /* Nothing binds to a new BlockIo until asked: this makes DiskIo, the
   * partition driver and the FAT driver attach, recursively. */
  efi_bs->ConnectController(vd->handle, NULL, NULL, TRUE);
  return 0;
}

bool vdisk_uninstall(struct vdisk *vd)
{
  if (!vd->installed)
    return true;
  efi_bs->DisconnectController(vd->handle, NULL, NULL);
  if (efi_bs->UninstallProtocolInterface(vd->handle, &guid_block_io, &vd->bio) != EFI_SUCCESS)
    return false;
  if (efi_bs->UninstallProtocolInterface(vd->handle, &guid_device_path, vd->dp) != EFI_SUCCESS)
    return false;
  vd->installed = false;
  return true;
}

void vdisk_free(struct vdisk *vd)
{
  if (!vd)
    return;
  overlay_free(vd->ov);
  vhd_free(vd->dp);
  vhd_free(vd);
}
