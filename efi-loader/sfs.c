/* SPDX-License-Identifier: BSD-3-Clause */
/* EFI_SIMPLE_FILE_SYSTEM helpers (see sfs.h for when they may be used). */
#include "sfs.h"
#include "console.h"
#include "error.h"
#include "platform.h"

static int open_file(EFI_FILE_IO_INTERFACE *sfs, const char *path, UINT64 mode,
                     EFI_FILE_HANDLE *out)
{
  uint16_t name[512];
  if (utf8_to_ucs2(path, name, sizeof name / sizeof name[0]) < 0)
    return vhd_error(EINVAL, "%s: path too long", path);
  for (uint16_t *p = name; *p; p++)
    if (*p == '/')
      *p = '\\';
  EFI_FILE_HANDLE root;
  EFI_STATUS st = sfs->OpenVolume(sfs, &root);
  if (st != EFI_SUCCESS)
    return vhd_error(efi_errno(st), "%s: cannot open the volume: %s", path,
                     efi_status_text(st));
  st = root->Open(root, out, name, mode, 0);
  root->Close(root);
  if (st != EFI_SUCCESS)
    return vhd_error(efi_errno(st), "%s: %s", path,
                     st == EFI_NOT_FOUND ? "not found" : efi_status_text(st));
  return 0;
}

static int file_info(EFI_FILE_HANDLE f, const char *path, EFI_FILE_INFO **out)
{
  UINTN size = 0;
  EFI_STATUS st = f->GetInfo(f, &guid_file_info, &size, NULL);
  if (st != EFI_BUFFER_TOO_SMALL)
    return vhd_error(efi_errno(st), "%s: cannot get file information: %s", path,
                     efi_status_text(st));
  EFI_FILE_INFO *info = vhd_malloc(size);
  if (!info)
    return vhd_error(ENOMEM, "out of memory");
  st = f->GetInfo(f, &guid_file_info, &size, info);
  if (st != EFI_SUCCESS) {
    vhd_free(info);
    return vhd_error(efi_errno(st), "%s: cannot get file information: %s", path,
                     efi_status_text(st));
  }
  *out = info;
  return 0;
}

static int read_exact(EFI_FILE_HANDLE f, const char *path, uint64_t off, void *buf, size_t len)
{
  EFI_STATUS st = f->SetPosition(f, off);
  uint8_t *p = buf;
  while (st == EFI_SUCCESS && len) {
    UINTN n = len > (64u << 20) ? (64u << 20) : len;
    st = f->Read(f, &n, p);
    if (st == EFI_SUCCESS && n == 0)
      return vhd_error(EIO, "%s: file ends before offset %llu", path,
                       (unsigned long long)(off + (uint64_t)(p - (uint8_t *)buf)));
    p += n;
    len -= n;
  }
  if (st != EFI_SUCCESS)
    return vhd_error(efi_errno(st), "%s: read failed: %s", path, efi_status_text(st));
  return 0;
}

int sfs_file_size(EFI_FILE_IO_INTERFACE *sfs, const char *path, uint64_t *size)
{
  EFI_FILE_HANDLE f;
  int r = open_file(sfs, path, EFI_FILE_MODE_READ, &f);
  if (r < 0)
    return r;
  EFI_FILE_INFO *info;
  r = file_info(f, path, &info);
  if (r == 0) {
    if (info->Attribute & EFI_FILE_DIRECTORY)
      r = vhd_error(EINVAL, "%s: is a directory", path);
    *size = info->FileSize;
    vhd_free(info);
  }
  f->Close(f);
  return r;
}

int sfs_read_at(EFI_FILE_IO_INTERFACE *sfs, const char *path, uint64_t off, void *buf,
                size_t len)
{
  EFI_FILE_HANDLE f;
  int r = open_file(sfs, path, EFI_FILE_MODE_READ, &f);
  if (r < 0)
    return r;
  r = read_exact(f, path, off, buf, len);
  f->Close(f);
  return r;
}

int sfs_read_small(EFI_FILE_IO_INTERFACE *sfs, const char *path, size_t max, char **data,
                   size_t *size)
{
  uint64_t n;
  int r = sfs_file_size(sfs, path, &n);
  if (r < 0)
    return r;
  if (n > max)
    return vhd_error(EFBIG, "%s: %llu bytes is too big (at most %zu)", path,
                     (unsigned long long)n, max);
  char *buf = vhd_malloc((size_t)n + 1);
  if (!buf)
    return vhd_error(ENOMEM, "out of memory");
  r = sfs_read_at(sfs, path, 0, buf, (size_t)n);
  if (r < 0) {
    vhd_free(buf);
    return r;
  }
  buf[n] = '\0';
  *data = buf;
  *size = (size_t)n;
  return 0;
}

int sfs_read_all(EFI_FILE_IO_INTERFACE *sfs, const char *path, uint8_t **data, uint64_t *size)
{
  uint64_t n;
  int r = sfs_file_size(sfs, path, &n);
  if (r < 0)
    return r;
  if (n != (size_t)n)
    return vhd_error(EFBIG, "%s: %llu bytes do not fit in memory", path,
                     (unsigned long long)n);
  uint8_t *buf = vhd_malloc(n ? (size_t)n : 1);
  if (!buf)
    return vhd_error(ENOMEM, "%s: not enough memory to hold its %llu MiB", path,
                     (unsigned long long)(n >> 20));
  r = sfs_read_at(sfs, path, 0, buf, (size_t)n);
  if (r < 0) {
    vhd_free(buf);
    return r;
  }
  *data = buf;
  *size = n;
  return 0;
}

int sfs_grow(EFI_FILE_IO_INTERFACE *sfs, const char *path, uint64_t new_size,
             const void *tail, size_t len)
{
  EFI_FILE_HANDLE f;
  int r = open_file(sfs, path, EFI_FILE_MODE_READ | EFI_FILE_MODE_WRITE, &f);
  if (r < 0)
    return r;
  EFI_FILE_INFO *info;
  r = file_info(f, path, &info);
  if (r < 0) {
    f->Close(f);
    return r;
  }
  EFI_STATUS st = EFI_SUCCESS;
  if (info->FileSize < new_size) {
    info->FileSize = new_size;
    st = f->SetInfo(f, &guid_file_info, info->Size, info);
  }
  vhd_free(info);
  if (st == EFI_SUCCESS)
    st = f->SetPosition(f, new_size - len);
  UINTN n = len;
  if (st == EFI_SUCCESS)
    st = f->Write(f, &n, (void *)tail);
  if (st == EFI_SUCCESS)
    st = f->Flush(f);
  EFI_STATUS cst = f->Close(f);
  if (st == EFI_SUCCESS)
    st = cst;
  if (st != EFI_SUCCESS)
    return vhd_error(efi_errno(st), "%s: cannot grow the file to %llu bytes: %s", path,
                     (unsigned long long)new_size, efi_status_text(st));
  return 0;
}

int sfs_free_space(EFI_FILE_IO_INTERFACE *sfs, uint64_t *bytes)
{
  EFI_FILE_HANDLE root;
  EFI_STATUS st = sfs->OpenVolume(sfs, &root);
  if (st != EFI_SUCCESS)
    return vhd_error(efi_errno(st), "cannot open the volume: %s", efi_status_text(st));
  UINTN size = 0;
  st = root->GetInfo(root, &guid_fs_info, &size, NULL);
  EFI_FILE_SYSTEM_INFO *info = st == EFI_BUFFER_TOO_SMALL ? vhd_malloc(size) : NULL;
  if (info)
    st = root->GetInfo(root, &guid_fs_info, &size, info);
  if (info && st == EFI_SUCCESS)
    *bytes = info->FreeSpace;
  vhd_free(info);
  root->Close(root);
  if (st != EFI_SUCCESS)
    return vhd_error(efi_errno(st), "cannot get the volume's free space: %s",
                     efi_status_text(st));
  return 0;
}
