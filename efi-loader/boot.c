/* SPDX-License-Identifier: BSD-3-Clause */
/* Finding and starting the boot program (see boot.h). */
#include "boot.h"
#include "console.h"
#include "devpath.h"
#include "error.h"
#include "platform.h"
#include "sfs.h"

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

int boot_find(struct vdisk *vd, const char *path, const char *image, EFI_HANDLE *fs,
              EFI_DEVICE_PATH **file_dp)
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
  *fs = best;
  *file_dp = dp_append_file(best_dp, path);
  if (!*file_dp)
    return vhd_error(ENOMEM, "out of memory");
  return 0;
}

/* The program's bytes, read through the virtual disk's file system (its
 * reads end in the loader's BlockIo, never in the host's file system
 * driver), so that what is verified is exactly what LoadImage gets. */
static int read_program(EFI_HANDLE fs, const char *path, const char *image, uint8_t **buf,
                        uint64_t *size)
{
  EFI_FILE_IO_INTERFACE *sfs;
  if (efi_bs->HandleProtocol(fs, &guid_simple_fs, (void **)&sfs) != EFI_SUCCESS)
    return vhd_error(EIO, "%s: the virtual disk's file system went away", image);
  int r = sfs_read_all(sfs, path, buf, size);
  if (r < 0)
    vhd_error_prefix(image);
  return r;
}

int boot_load(const struct boot_program *prog, const struct sb_check *sb, EFI_HANDLE *child)
{
  *child = NULL;
  uint8_t *buf = NULL;
  uint64_t size = 0;
  if (read_program(prog->fs, prog->path, prog->image, &buf, &size) < 0 ||
      sb_check_program(sb, buf, (size_t)size, prog->path, prog->image) < 0) {
    vhd_free(buf);
    return -vhd_last_errno();
  }
  EFI_STATUS st = efi_bs->LoadImage(FALSE, efi_image, prog->file_dp, buf, (UINTN)size, child);
  vhd_free(buf);
  if (st == EFI_SUCCESS)
    return 0;
  /* EFI_SECURITY_VIOLATION leaves a loaded image behind (UEFI spec,
   * LoadImage), which must never run. */
  if (st == EFI_SECURITY_VIOLATION && *child)
    efi_bs->UnloadImage(*child);
  *child = NULL;
  int r = sb_explain_load_failure(sb->how, st, prog->path, prog->image);
  if (r < 0)
    return r;
  return vhd_error(efi_errno(st), "%s: the firmware cannot load it: %s", prog->path,
                   efi_status_text(st));
}

EFI_STATUS boot_run(EFI_HANDLE child, const char *args)
{
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
  EFI_STATUS st = efi_bs->StartImage(child, &exit_size, &exit_data);
  if (exit_data)
    efi_bs->FreePool(exit_data);
  vhd_free(options);
  return st;
}
