/* Findings of open and check (see diag.h). */
#include "diag.h"
#include "error.h"
#include "util/strfmt.h"

static void emit(struct vhd_diag *d, enum vhd_check_severity sev,
                 const char *fmt, va_list ap)
{
  if (d->result) {
    switch (sev) {
    case VHD_CHECK_CORRUPTION: d->result->corruptions++; break;
    case VHD_CHECK_LEAK: d->result->leaks++; break;
    case VHD_CHECK_WARNING: d->result->warnings++; break;
    default: break;
    }
  }
  /* A check of a badly broken image may find a problem per BAT entry:
   * format the text only when someone reads it. */
  if (d->report) {
    char msg[1024];
    vhd_vsnprintf(msg, sizeof msg, fmt, ap);
    d->report(d->opaque, sev, msg);
  }
}

int diag_corrupt(struct vhd_diag *d, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int r = 0;
  if (d)
    emit(d, VHD_CHECK_CORRUPTION, fmt, ap);
  else
    r = vhd_verror(EINVAL, fmt, ap);
  va_end(ap);
  return r;
}

void diag_leak(struct vhd_diag *d, uint64_t bytes, const char *fmt, ...)
{
  if (!d)
    return;
  va_list ap;
  va_start(ap, fmt);
  if (d->result)
    d->result->leaked_bytes += bytes;
  emit(d, VHD_CHECK_LEAK, fmt, ap);
  va_end(ap);
}

void diag_warn(struct vhd_diag *d, const char *fmt, ...)
{
  if (!d)
    return;
  va_list ap;
  va_start(ap, fmt);
  emit(d, VHD_CHECK_WARNING, fmt, ap);
  va_end(ap);
}

void diag_info(struct vhd_diag *d, const char *fmt, ...)
{
  if (!d)
    return;
  va_list ap;
  va_start(ap, fmt);
  emit(d, VHD_CHECK_INFO, fmt, ap);
  va_end(ap);
}

void diag_repaired(struct vhd_diag *d, const char *fmt, ...)
{
  if (!d)
    return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vhd_vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (d->result)
    d->result->repairs++;
  diag_info(d, "repaired: %s", msg);
}
