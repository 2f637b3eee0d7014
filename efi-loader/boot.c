/* SPDX-License-Identifier: BSD-3-Clause */
/* Finding and starting the boot program (see boot.h). */
#include "boot.h"
#include "console.h"
#include "devpath.h"
#include "error.h"
#include "platform.h"

/* Partition number of the HD() node right after the disk's own path, or
 * a large number when there is none (a file system on the whole disk). */
static uint32_t partition_of(EFI_DEVICE_PATH *dp, size_t disk_len)
{
  EFI_DEVICE_PATH *n = (EFI_DEVICE_PATH *)((UINT8 *)dp + disk_len);
  if (DP_IS_END(n) || n->Type != MEDIA_DEVICE_PATH || n->SubType != MEDIA_HARDDRIVE_DP ||
      DP_LEN(n) < 8)
    return 0xffffffffu;
  uint32_t num;
  memcpy(&num, (UINT8 *)n + 4, 4);
  return num;
}

static bool has_file(EFI_HANDLE h, const char *path)
{
  EFI_FILE_IO_INTERFACE *sfs;
  EFI_FILE_HANDLE root, f;
  uint16_t name[512];
  if (utf8_to_ucs2(path, name, sizeof name / sizeof name[0]) < 0 ||
      efi_bs->HandleProtocol(h, &guid_simple_fs, (void **)&sfs) != EFI_SUCCESS ||
      sfs->OpenVolume(sfs, &root) != EFI_SUCCESS)
    return false;
  EFI_STATUS st = root->Open(root, &f, name, EFI_FILE_MODE_READ, 0);
  if (st == EFI_SUCCESS)
    f->Close(f);
  root->Close(root);
  return st == EFI_SUCCESS;
}

int boot_find(struct vdisk *vd, const char *path, const char *image, EFI_DEVICE_PATH **file_dp)
{
  UINTN count = 0;
  EFI_HANDLE *handles = NULL;
  if (efi_bs->LocateHandleBuffer(ByProtocol, &guid_simple_fs, NULL, &count, &handles) !=
      EFI_SUCCESS)
    count = 0;
  size_t disk_len = dp_size(vd->dp) - 4;
  unsigned searched = 0;
  EFI_HANDLE best = NULL;
  EFI_DEVICE_PATH *best_dp = NULL;
  uint32_t best_part = 0;
  for (UINTN i = 0; i < count; i++) {
    EFI_DEVICE_PATH *dp;
    if (efi_bs->HandleProtocol(handles[i], &guid_device_path, (void **)&dp) != EFI_SUCCESS ||
        !dp_starts_with(dp, vd->dp))
      continue;
    searched++;
    uint32_t part = partition_of(dp, disk_len);
    if ((!best || part < best_part) && has_file(handles[i], path)) {
      best = handles[i];
      best_dp = dp;
      best_part = part;
    }
  }
  if (handles)
    efi_bs->FreePool(handles);
  if (!searched)
    return vhd_error(ENOENT, "%s: the firmware found no file system it can read on the "
                     "virtual disk", image);
  if (!best)
    return vhd_error(ENOENT, "%s: %s not found on the virtual disk (%u file system%s "
                     "searched)", image, path, searched, searched == 1 ? "" : "s");
  *file_dp = dp_append_file(best_dp, path);
  if (!*file_dp)
    return vhd_error(ENOMEM, "out of memory");
  return 0;
}

EFI_STATUS boot_start(EFI_DEVICE_PATH *file_dp, const char *args, const char *path,
                      bool *loaded)
{
  *loaded = false;
  EFI_HANDLE child = NULL;
  EFI_STATUS st = efi_bs->LoadImage(FALSE, efi_image, file_dp, NULL, 0, &child);
  if (st != EFI_SUCCESS) {
    vhd_error(efi_errno(st), "%s: the firmware cannot load it: %s", path, efi_status_text(st));
    return st;
  }
  *loaded = true;
  uint16_t *options = NULL;
  if (args && *args) {
    size_t n = strlen(args) + 1;
    options = vhd_malloc(n * 2);
    EFI_LOADED_IMAGE *li;
    if (options && utf8_to_ucs2(args, options, n) >= 0 &&
        efi_bs->HandleProtocol(child, &guid_loaded_image, (void **)&li) == EFI_SUCCESS) {
      li->LoadOptions = options;
      li->LoadOptionsSize = (UINT32)((size_t)(utf8_to_ucs2(args, options, n) + 1) * 2);
    }
  }
  UINTN exit_size = 0;
  CHAR16 *exit_data = NULL;
  st = efi_bs->StartImage(child, &exit_size, &exit_data);
  if (exit_data)
    efi_bs->FreePool(exit_data);
  vhd_free(options);
  return st;
}
