/* SPDX-License-Identifier: BSD-3-Clause */
/* Device path helpers. */
#include "devpath.h"
#include "console.h"
#include "platform.h"

static void set_len(EFI_DEVICE_PATH *n, size_t len)
{
  n->Length[0] = (UINT8)len;
  n->Length[1] = (UINT8)(len >> 8);
}

size_t dp_size(const EFI_DEVICE_PATH *dp)
{
  const EFI_DEVICE_PATH *n = dp;
  while (!DP_IS_END(n))
    n = DP_NEXT(n);
  return (size_t)((const UINT8 *)n - (const UINT8 *)dp) + DP_LEN(n);
}

EFI_DEVICE_PATH *dp_dup(const EFI_DEVICE_PATH *dp)
{
  size_t n = dp_size(dp);
  EFI_DEVICE_PATH *copy = vhd_malloc(n);
  if (copy)
    memcpy(copy, dp, n);
  return copy;
}

EFI_DEVICE_PATH *dp_last_node(const EFI_DEVICE_PATH *dp)
{
  const EFI_DEVICE_PATH *n = dp, *last = NULL;
  while (!DP_IS_END(n)) {
    last = n;
    n = DP_NEXT(n);
  }
  return (EFI_DEVICE_PATH *)last;
}

EFI_DEVICE_PATH *dp_parent(const EFI_DEVICE_PATH *dp)
{
  EFI_DEVICE_PATH *last = dp_last_node(dp);
  size_t keep = last ? (size_t)((const UINT8 *)last - (const UINT8 *)dp) : 0;
  EFI_DEVICE_PATH *copy = vhd_malloc(keep + 4);
  if (!copy)
    return NULL;
  memcpy(copy, dp, keep);
  EFI_DEVICE_PATH *end = (EFI_DEVICE_PATH *)((UINT8 *)copy + keep);
  end->Type = END_DEVICE_PATH_TYPE;
  end->SubType = END_ENTIRE_DEVICE_PATH_SUBTYPE;
  set_len(end, 4);
  return copy;
}

bool dp_starts_with(const EFI_DEVICE_PATH *path, const EFI_DEVICE_PATH *prefix)
{
  size_t plen = dp_size(prefix) - 4;
  size_t len = dp_size(path) - 4;
  return plen <= len && memcmp(path, prefix, plen) == 0;
}

EFI_DEVICE_PATH *dp_append_file(const EFI_DEVICE_PATH *path, const char *file)
{
  uint16_t name[512];
  int n = utf8_to_ucs2(file, name, sizeof name / sizeof name[0]);
  if (n < 0)
    return NULL;
  size_t head = dp_size(path) - 4;
  size_t node = 4 + (size_t)(n + 1) * 2;
  UINT8 *out = vhd_malloc(head + node + 4);
  if (!out)
    return NULL;
  memcpy(out, path, head);
  EFI_DEVICE_PATH *f = (EFI_DEVICE_PATH *)(out + head);
  f->Type = MEDIA_DEVICE_PATH;
  f->SubType = MEDIA_FILEPATH_DP;
  set_len(f, node);
  memcpy(out + head + 4, name, (size_t)(n + 1) * 2);
  EFI_DEVICE_PATH *end = (EFI_DEVICE_PATH *)(out + head + node);
  end->Type = END_DEVICE_PATH_TYPE;
  end->SubType = END_ENTIRE_DEVICE_PATH_SUBTYPE;
  set_len(end, 4);
  return (EFI_DEVICE_PATH *)out;
}

const char *dp_text(const EFI_DEVICE_PATH *dp, char *buf, size_t len)
{
  static EFI_DEVICE_PATH_TO_TEXT_PROTOCOL *to_text;
  if (!to_text &&
      efi_bs->LocateProtocol(&guid_dp_to_text, NULL, (void **)&to_text) != EFI_SUCCESS)
    to_text = NULL;
  CHAR16 *text = to_text ? to_text->ConvertDevicePathToText(
                               (EFI_DEVICE_PATH *)dp, FALSE, FALSE) : NULL;
  if (!text) {
    if (len)
      ucs2_to_utf8((const uint16_t *)L"(device path)", (size_t)-1, buf, len);
    return buf;
  }
  ucs2_to_utf8(text, (size_t)-1, buf, len);
  efi_bs->FreePool(text);
  return buf;
}
