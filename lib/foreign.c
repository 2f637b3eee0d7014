/* SPDX-License-Identifier: BSD-3-Clause */
/* Foreign formats: those no driver reads (VDI has a driver, qcow2 and
 * VMDK sparse extents have drivers in hosted builds, so only their other
 * forms get here there). The signatures come from each format's specification
 * (see shared/reference/vmdk-vdi-qcow2.md for qcow2, VMDK and VDI); only
 * the first 4 KiB are looked at, so a raw disk that happens to start with
 * one of them is read only when the raw format is asked for. */
#include "foreign.h"
#include "error.h"
#include "util/endian.h"
#include "util/path.h"

#define PROBE_BYTES 4096u

bool foreign_vmdk_descriptor(const uint8_t *p, size_t n)
{
  size_t i = 0;
  while (i < n) {
    size_t end = i;
    while (end < n && p[end] != '\n') {
      if (p[end] == 0)
        return false;
      end++;
    }
    size_t len = end - i;
    if (len && p[end - 1] == '\r')
      len--;
    if (len && p[i] != '#')
      return len == 9 && memcmp(p + i, "version=", 8) == 0 && p[i + 8] >= '1' &&
             p[i + 8] <= '3';
    i = end + 1;
  }
  return false;
}

/* The name of the format of the first n bytes, or NULL. */
static const char *format_of(const uint8_t *p, size_t n)
{
  if (n >= 8 && memcmp(p, "QFI\xfb", 4) == 0)
    return get_be32(p + 4) == 1 ? "qcow (version 1)" : "qcow2 (a version other than 2 or 3, "
                                                      "or a build without the qcow2 reader)";
  if (n >= 4 && memcmp(p, "QED\0", 4) == 0)
    return "QED";
  if (n >= 68 && get_le32(p + 64) == 0xBEDA107Fu)
    return "VDI (VirtualBox)";
  if (n >= 4 && memcmp(p, "KDMV", 4) == 0)
    return "VMDK (sparse extent)";
  if (n >= 4 && memcmp(p, "COWD", 4) == 0)
    return "VMDK (ESX vmfsSparse extent)";
  if (n >= 16 && (memcmp(p, "WithoutFreeSpace", 16) == 0 ||
                  memcmp(p, "WithouFreSpacExt", 16) == 0))
    return "Parallels";
  if (foreign_vmdk_descriptor(p, n))
    return "VMDK (descriptor)";
  return NULL;
}

/* Virtual PC splits images on FAT volumes into NAME.vhd, NAME.v01, ...;
 * only the last piece ends with the footer, so the first piece probes as
 * raw (or, for a dynamic disk, as a VHD by its footer copy at offset 0)
 * and would silently read as a different disk. */
int foreign_refuse_split(vhd_io *io)
{
  uint64_t size;
  uint8_t tail[8];
  int r = io_get_size(io, &size);
  if (r == 0 && size >= 512)
    r = io_pread(io, tail, sizeof tail, size - 512);
  if (r < 0)
    return r;
  if (size >= 512 && memcmp(tail, "conectix", 8) == 0)
    return 0;   /* ends with a footer: a whole image, not a first piece */
  const char *base = path_basename(io->name);
  size_t n = strlen(base);
  if (n < 5 || base[n - 4] != '.' || (base[n - 3] | 0x20) != 'v' ||
      (base[n - 2] | 0x20) != 'h' || (base[n - 1] | 0x20) != 'd')
    return 0;
  char sibling[256];
  if (n >= sizeof sibling)
    return 0;
  memcpy(sibling, base, n + 1);
  bool upper = base[n - 3] == 'V';
  sibling[n - 2] = '0';
  sibling[n - 1] = '1';
  sibling[n - 3] = upper ? 'V' : 'v';
  vhd_io *piece;
  if (io_open_related(io, sibling, VHD_IO_RDONLY, &piece) < 0) {
    vhd_error_clear();
    return 0;
  }
  vhd_io_close(piece);
  return vhd_error(EMEDIUMTYPE, "%s: no footer at the end, and %s exists beside it: this is the "
                   "first piece of a split Virtual PC image; join the pieces in order "
                   "(cat NAME.vhd NAME.v01 NAME.v02 ... > whole.vhd) and open the result",
                   io->name, sibling);
}

int foreign_refuse(vhd_io *io)
{
  uint64_t size;
  int r = io_get_size(io, &size);
  if (r < 0)
    return r;
  uint8_t head[PROBE_BYTES];
  size_t n = size < sizeof head ? (size_t)size : sizeof head;
  if (n && (r = io_pread(io, head, n, 0)) < 0)
    return r;
  const char *format = format_of(head, n);
  if (format)
    return vhd_error(EMEDIUMTYPE, "%s is a %s image, which this version cannot read (only VHD, "
                     "VHDX, qcow2, VMDK, VDI and raw; open it as raw to read its bytes as "
                     "they are)", io->name, format);
  return foreign_refuse_split(io);
}
