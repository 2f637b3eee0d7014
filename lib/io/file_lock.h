/* SPDX-License-Identifier: BSD-3-Clause */
/* Image locks between processes (qemu's byte scheme, see file_lock.c). */
#ifndef LIBVHD_IO_FILE_LOCK_H
#define LIBVHD_IO_FILE_LOCK_H

#include <stdbool.h>

/* Lock the open file fd as a reader or a writer. 0 when locked, or when
 * the system or file system has no such locks; -EBUSY with one line naming
 * path and who holds it when another open file description conflicts. */
int file_lock_take(int fd, const char *path, bool writing);
/* Drop every lock fd's open file description holds. */
void file_lock_release(int fd);

#endif
