/* SPDX-License-Identifier: BSD-3-Clause */
/* The pieces that put an image on a kernel NBD device and take it off
 * again, shared by vhdtool attach/detach and vhdboot-attach (the
 * initramfs): finding and running the helper programs, a free /dev/nbdN,
 * the disconnect and the wait for nbdkit to go. Nothing here prints:
 * failures return -1 with errno set and each program words its own line. */
#ifndef NBD_COMMON_H
#define NBD_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* name looked for in $PATH, then the sbin and bin directories (an
 * initramfs or a sudo may have a short PATH). A static buffer; NULL when
 * absent. */
const char *nbd_find_program(const char *name);

/* Run prog (argv[0] as given) with stdin_text on its standard input
 * (NULL: inherited), its standard output sent to /dev/null when
 * mute_stdout (what it says there would mix with the caller's output),
 * and wait: its exit status, 128 + the signal that killed it, 127 when it
 * could not be run, or -1 (errno) when it could not be started. */
int nbd_spawn_wait(const char *prog, char *const argv[], const char *stdin_text,
                   bool mute_stdout);

/* The first /dev/nbdN with no connection, as "nbdN" in name. -1 with
 * errno ENODEV when the kernel has no nbd device at all, EBUSY when all
 * are in use. */
int nbd_free_device(char *name, size_t len);

/* Whether /sys/block/NAME/pid exists (a client holds the device). */
bool nbd_connected(const char *name);

/* Wait up to ms milliseconds for path to exist. */
bool nbd_wait_for(const char *path, int ms);

/* Let /dev/NAME take requests as large as a virtio disk's (1280 KiB, or
 * the device's own limit if lower): the kernel's NBD client starts at
 * 128 KiB, so a 1 MiB read reached the server as eight requests (a root
 * over NBD in a TCG guest read at 2.2-4x the partition's time instead of
 * 2.3x with 1280 KiB, bench/README.md). 0, or -1 with errno. */
int nbd_raise_request_size(const char *name);

/* Flush /dev/NAME's buffers and disconnect it (the kernel sends
 * NBD_CMD_DISC, so the server closes the image). -1 with errno. */
int nbd_disconnect(const char *name);

/* The first line of a small state file (a pid file, a sysfs attribute),
 * without its newline. -1 when it cannot be read or is empty. */
int nbd_read_line(const char *path, char *buf, size_t len);

/* Gone, or a zombie nobody reaps (a shell as PID 1 may not). */
bool nbd_process_gone(pid_t pid);

/* SIGTERM to pid, then wait up to ms for it to be gone. 0 when gone (or
 * never there), -1 (ETIMEDOUT) when it outlived the wait. */
int nbd_stop_server(pid_t pid, int ms);

#endif
