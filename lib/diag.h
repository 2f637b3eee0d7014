/* SPDX-License-Identifier: BSD-3-Clause */
/* Findings while opening or checking an image.
 *
 * Format drivers validate every structure in one code path. When an image
 * is opened for use there is no collector (d == NULL): the first corruption
 * fails the open with its message. When vhd_check runs, a collector records
 * every finding and the driver carries on where it safely can (for example
 * treating a BAT entry past the end of file as unallocated). This keeps one
 * parser for both jobs. */
#ifndef LIBVHD_DIAG_H
#define LIBVHD_DIAG_H

#include "vhd.h"
#include "platform.h"

/* A badly broken image can have a finding per BAT entry (millions). Each
 * kind of finding (one message template) is shown this many times; the
 * rest are only counted, and diag_finish reports how many were left out.
 * The table is fixed, so a check's memory does not grow with the image. */
#define DIAG_SHOWN_PER_KIND 10
#define DIAG_KINDS 64
#define DIAG_EXAMPLE_LEN 160

struct diag_kind {
  const char *fmt;                 /* the template: its address is the kind */
  enum vhd_check_severity sev;
  unsigned shown;
  uint64_t not_shown;
  char example[DIAG_EXAMPLE_LEN];  /* the last one shown, for the summary */
};

struct vhd_diag {
  vhd_check_report_fn report;
  void *opaque;
  struct vhd_check_result *result;
  unsigned nkinds;                 /* zero-initialise the rest */
  struct diag_kind kinds[DIAG_KINDS];
};

/* A structure is wrong. Without a collector: sets the error (EINVAL
 * unless errnum says otherwise) and returns it negated. With one: records
 * the finding and returns 0 so the caller repairs its in-memory view and
 * continues. Message: "FILE: ..." is prefixed by the caller's format. */
int diag_corrupt(struct vhd_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One INFO line per kind that had findings left out: "... and N more
 * corruption findings like "<the last one shown>"". Call once, at the end
 * of the pass. */
void diag_finish(struct vhd_diag *d);
/* Space no structure uses. Never fails an open. */
void diag_leak(struct vhd_diag *d, uint64_t bytes, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Odd but harmless. Never fails an open. */
void diag_warn(struct vhd_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A note for the report only. */
void diag_info(struct vhd_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A change made by a repair: reported as an info "repaired: ..." and
 * counted in result->repairs. */
void diag_repaired(struct vhd_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
