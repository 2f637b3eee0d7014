/* SPDX-License-Identifier: BSD-3-Clause */
/* The per-thread last error, and the public accessors for it. */
#include "error.h"
#include "util/strfmt.h"
#include "vhd.h"

int vhd_verror(int errnum, const char *fmt, va_list ap)
{
  struct vhd_error_slot *slot = vhd_error_slot();
  if (errnum <= 0)
    errnum = EIO;
  slot->errnum = errnum;
  vhd_vsnprintf(slot->message, sizeof slot->message, fmt, ap);
  return -errnum;
}

int vhd_error(int errnum, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int r = vhd_verror(errnum, fmt, ap);
  va_end(ap);
  return r;
}

void vhd_error_clear(void)
{
  struct vhd_error_slot *slot = vhd_error_slot();
  slot->errnum = 0;
  slot->message[0] = '\0';
}

void vhd_error_prefix(const char *prefix)
{
  struct vhd_error_slot *slot = vhd_error_slot();
  char old[sizeof slot->message];
  memcpy(old, slot->message, sizeof old);
  vhd_snprintf(slot->message, sizeof slot->message, "%s: %s", prefix, old);
}

const char *vhd_last_error(void) { return vhd_error_slot()->message; }
int vhd_last_errno(void) { return vhd_error_slot()->errnum; }

const char *vhd_version(void) { return LIBVHD_VERSION_STRING; }

const char *vhd_format_name(enum vhd_format format)
{
  switch (format) {
  case VHD_FORMAT_RAW: return "raw";
  case VHD_FORMAT_VHD: return "vhd";
  case VHD_FORMAT_VHDX: return "vhdx";
  case VHD_FORMAT_QCOW2: return "qcow2";
  case VHD_FORMAT_VMDK: return "vmdk";
  case VHD_FORMAT_VDI: return "vdi";
  default: return NULL;
  }
}

const char *vhd_type_name(enum vhd_disk_type type)
{
  switch (type) {
  case VHD_TYPE_FIXED: return "fixed";
  case VHD_TYPE_DYNAMIC: return "dynamic";
  case VHD_TYPE_DIFFERENCING: return "differencing";
  default: return NULL;
  }
}
