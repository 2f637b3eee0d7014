/* SPDX-License-Identifier: BSD-3-Clause */
/* Findings of open and check (see diag.h). */
#include "diag.h"
#include "error.h"
#include "util/strfmt.h"

/* The kind a template belongs to, or NULL when the table is full (then
 * every finding of it is shown: templates are string literals, so their
 * number is bounded by the code, not by the image). */
static struct diag_kind *kind_of(struct vhd_diag *d, const char *key,
                                 enum vhd_check_severity sev)
{
  for (unsigned i = 0; i < d->nkinds; i++)
    if (d->kinds[i].fmt == key)
      return &d->kinds[i];
  if (d->nkinds == DIAG_KINDS)
    return NULL;
  struct diag_kind *k = &d->kinds[d->nkinds++];
  k->fmt = key;
  k->sev = sev;
  k->shown = 0;
  k->not_shown = 0;
  k->example[0] = '\0';
  return k;
}

/* key names the kind (the caller's template); fmt/ap is the text. */
static void emit(struct vhd_diag *d, enum vhd_check_severity sev, const char *key,
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
  if (!d->report)
    return;
  struct diag_kind *k = kind_of(d, key, sev);
  if (k && k->shown == DIAG_SHOWN_PER_KIND) {
    k->not_shown++;
    return;  /* counted above; not even formatted */
  }
  char msg[1024];
  vhd_vsnprintf(msg, sizeof msg, fmt, ap);
  if (k) {
    k->shown++;
    vhd_snprintf(k->example, sizeof k->example, "%s", msg);
  }
  d->report(d->opaque, sev, msg);
}

static void emit_key(struct vhd_diag *d, enum vhd_check_severity sev, const char *key,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void emit_key(struct vhd_diag *d, enum vhd_check_severity sev, const char *key,
                     const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  emit(d, sev, key, fmt, ap);
  va_end(ap);
}

static const char *severity_word(enum vhd_check_severity sev)
{
  switch (sev) {
  case VHD_CHECK_CORRUPTION: return "corruption";
  case VHD_CHECK_LEAK: return "leak";
  case VHD_CHECK_WARNING: return "warning";
  default: return "info";
  }
}

void diag_finish(struct vhd_diag *d)
{
  if (!d || !d->report)
    return;
  for (unsigned i = 0; i < d->nkinds; i++) {
    const struct diag_kind *k = &d->kinds[i];
    if (k->not_shown == 0)
      continue;
    /* The example may have been cut: say so rather than misquote. */
    size_t len = strlen(k->example);
    const char *cut = len + 1 == sizeof k->example ? "..." : "";
    char msg[sizeof k->example + 128];
    vhd_snprintf(msg, sizeof msg, "... and %llu more %s findings like \"%s%s\"",
                 (unsigned long long)k->not_shown, severity_word(k->sev), k->example, cut);
    d->report(d->opaque, VHD_CHECK_INFO, msg);
  }
  d->nkinds = 0;
}

int diag_corrupt(struct vhd_diag *d, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int r = 0;
  if (d)
    emit(d, VHD_CHECK_CORRUPTION, fmt, fmt, ap);
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
  emit(d, VHD_CHECK_LEAK, fmt, fmt, ap);
  va_end(ap);
}

void diag_warn(struct vhd_diag *d, const char *fmt, ...)
{
  if (!d)
    return;
  va_list ap;
  va_start(ap, fmt);
  emit(d, VHD_CHECK_WARNING, fmt, fmt, ap);
  va_end(ap);
}

void diag_info(struct vhd_diag *d, const char *fmt, ...)
{
  if (!d)
    return;
  va_list ap;
  va_start(ap, fmt);
  emit(d, VHD_CHECK_INFO, fmt, fmt, ap);
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
  emit_key(d, VHD_CHECK_INFO, fmt, "repaired: %s", msg);
}
