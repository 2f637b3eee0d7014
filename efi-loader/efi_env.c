/* SPDX-License-Identifier: BSD-3-Clause */
/* Storage for the firmware tables and the GUIDs declared in efi_env.h. */
#include "efi_env.h"
#include "platform.h"

EFI_HANDLE efi_image;
EFI_SYSTEM_TABLE *efi_st;
EFI_BOOT_SERVICES *efi_bs;
EFI_RUNTIME_SERVICES *efi_rt;

EFI_GUID guid_block_io = EFI_BLOCK_IO_PROTOCOL_GUID;
EFI_GUID guid_disk_io = EFI_DISK_IO_PROTOCOL_GUID;
EFI_GUID guid_device_path = EFI_DEVICE_PATH_PROTOCOL_GUID;
EFI_GUID guid_loaded_image = EFI_LOADED_IMAGE_PROTOCOL_GUID;
EFI_GUID guid_simple_fs = EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID;
EFI_GUID guid_file_info = EFI_FILE_INFO_ID;
EFI_GUID guid_fs_info = EFI_FILE_SYSTEM_INFO_ID;
EFI_GUID guid_rng = EFI_RNG_PROTOCOL_GUID;
EFI_GUID guid_dp_to_text = EFI_DEVICE_PATH_TO_TEXT_PROTOCOL_GUID;

/* 0b00f805-61be-4224-ac21-89e3561f90fd */
EFI_GUID guid_vhdboot = { 0x0b00f805, 0x61be, 0x4224,
                          { 0xac, 0x21, 0x89, 0xe3, 0x56, 0x1f, 0x90, 0xfd } };
/* db54e09c-aba9-4910-86b2-47a01ba0c6ad */
EFI_GUID guid_vhdboot_disk = { 0xdb54e09c, 0xaba9, 0x4910,
                               { 0x86, 0xb2, 0x47, 0xa0, 0x1b, 0xa0, 0xc6, 0xad } };

EFI_TPL efi_current_tpl(void)
{
  EFI_TPL old = efi_bs->RaiseTPL(TPL_HIGH_LEVEL);
  efi_bs->RestoreTPL(old);
  return old;
}

int efi_errno(EFI_STATUS st)
{
  switch (st) {
  case EFI_SUCCESS: return 0;
  case EFI_NOT_FOUND: return ENOENT;
  case EFI_OUT_OF_RESOURCES: return ENOMEM;
  case EFI_WRITE_PROTECTED: return EROFS;
  case EFI_VOLUME_FULL: return ENOSPC;
  case EFI_ACCESS_DENIED: return EACCES;
  case EFI_UNSUPPORTED: return ENOTSUP;
  case EFI_INVALID_PARAMETER: return EINVAL;
  case EFI_BAD_BUFFER_SIZE: return EINVAL;
  case EFI_NO_MEDIA: case EFI_MEDIA_CHANGED: return ENXIO;
  default: return EIO;
  }
}

const char *efi_status_text(EFI_STATUS st)
{
  switch (st) {
  case EFI_SUCCESS: return "success";
  case EFI_LOAD_ERROR: return "load error";
  case EFI_INVALID_PARAMETER: return "invalid parameter";
  case EFI_UNSUPPORTED: return "unsupported";
  case EFI_BAD_BUFFER_SIZE: return "bad buffer size";
  case EFI_BUFFER_TOO_SMALL: return "buffer too small";
  case EFI_NOT_READY: return "not ready";
  case EFI_DEVICE_ERROR: return "device error";
  case EFI_WRITE_PROTECTED: return "write protected";
  case EFI_OUT_OF_RESOURCES: return "out of resources";
  case EFI_VOLUME_CORRUPTED: return "volume corrupted";
  case EFI_VOLUME_FULL: return "volume full";
  case EFI_NO_MEDIA: return "no media";
  case EFI_MEDIA_CHANGED: return "media changed";
  case EFI_NOT_FOUND: return "not found";
  case EFI_ACCESS_DENIED: return "access denied";
  case EFI_SECURITY_VIOLATION: return "security violation";
  default: return "error";
  }
}

EFI_STATUS efi_status_from_errno(int errnum)
{
  switch (errnum) {
  case 0: return EFI_SUCCESS;
  case ENOENT: return EFI_NOT_FOUND;
  case ENOMEM: return EFI_OUT_OF_RESOURCES;
  case EROFS: return EFI_WRITE_PROTECTED;
  case ENOSPC: return EFI_VOLUME_FULL;
  case EACCES: return EFI_ACCESS_DENIED;
  case ENOTSUP: return EFI_UNSUPPORTED;
  case EINVAL: case EILSEQ: case ELOOP: return EFI_VOLUME_CORRUPTED;
  default: return EFI_LOAD_ERROR;
  }
}
