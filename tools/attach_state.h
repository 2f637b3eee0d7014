/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool attach/detach: what is attached, kept in a run directory so that
 * detach and attach --list in later processes find it. One directory per
 * device, RUN/nbdN, holding the nbdkit socket ("sock"), its pid file
 * ("nbdkit.pid"), the image's absolute path ("image") and the mode
 * ("mode"). RUN is $VHDTOOL_RUN_DIR when set, else /run/vhdtool for root
 * and $XDG_RUNTIME_DIR/vhdtool for others. */
#ifndef ATTACH_STATE_H
#define ATTACH_STATE_H

#include <stdbool.h>
#include <stddef.h>

struct attachment {
  char device[32];       /* "nbd0" */
  char image[4096];
  char mode[8];          /* ro, cow, rw */
  int nbdkit_pid;        /* 0 unknown */
};

/* RUN into buf. */
void attach_run_dir(char *buf, size_t len);
/* RUN/device/name into buf. */
void attach_state_path(const char *device, const char *name, char *buf, size_t len);
/* Create RUN/device and record image and mode there. 0 or -1 (errno). */
int attach_state_write(const struct attachment *a);
/* Read the record of device. 0, or -1 when there is none. */
int attach_state_read(const char *device, struct attachment *a);
/* Remove RUN/device and what it holds. */
void attach_state_remove(const char *device);
/* Call fn for every record, in no order; stops at fn's first non-zero
 * result and returns it. */
int attach_state_each(int (*fn)(const struct attachment *a, void *opaque), void *opaque);

#endif
