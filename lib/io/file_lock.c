/* SPDX-License-Identifier: BSD-3-Clause */
#define _GNU_SOURCE 1  /* F_OFD_SETLK, F_OFD_GETLK */
/* Image locks between processes, in qemu's byte scheme so that qemu-img,
 * qemu-io, qemu-nbd and this library see each other's locks.
 *
 * qemu (block/file-posix.c) takes open-file-description locks on single
 * bytes: a shared lock on byte 100 + i while it holds permission i, and a
 * shared lock on byte 200 + i while it refuses to let others hold it.
 * Permission bits (include/block/block-common.h, qemu 7.2): 0 consistent
 * read, 1 write, 2 write-unchanged, 3 resize. A conflict is a byte another
 * open file description locks: F_OFD_GETLK asks for a write lock on it.
 *
 * Our roles, chosen so that readers block writers and writers block
 * everybody, while readers coexist (what qemu-img info, check and convert
 * do without -U):
 *   reader: holds read;                     does not share write
 *   writer: holds read, write and resize;   does not share write or resize
 * Locks are taken first and checked after, as qemu does: two processes
 * racing both see each other and both give up, never both proceed.
 *
 * OFD locks belong to the open file description, so a second open() of the
 * same file in this process conflicts with the first like another process
 * would; callers that open a file twice release one first (file_lock_release).
 * Only Linux has OFD locks; elsewhere, and on file systems that refuse them
 * (some network file systems), images are opened without locks, as qemu
 * does. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "io/file_lock.h"

enum {
  PERM_READ = 0,
  PERM_WRITE = 1,
  PERM_RESIZE = 3,
  HOLDS_BASE = 100,     /* + i: "I hold permission i" */
  UNSHARES_BASE = 200,  /* + i: "nobody else may hold permission i" */
};

#define BIT(i) (1u << (i))

/* How long a conflict is looked at before it is believed: 25 x 20 ms. */
#define CONFLICT_RETRIES 25
#define CONFLICT_PAUSE_NS 20000000L

struct role {
  unsigned holds;
  unsigned unshares;
};

static const struct role reader = { BIT(PERM_READ), BIT(PERM_WRITE) };
static const struct role writer = { BIT(PERM_READ) | BIT(PERM_WRITE) | BIT(PERM_RESIZE),
                                    BIT(PERM_WRITE) | BIT(PERM_RESIZE) };

#ifdef F_OFD_SETLK

static bool unsupported(int err)
{
  return err == EINVAL || err == ENOTSUP || err == EOPNOTSUPP || err == ENOLCK;
}

static struct flock one_byte(short type, int byte)
{
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  return fl;
}

static int lock_byte(int fd, int byte, short type)
{
  struct flock fl = one_byte(type, byte);
  return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* 1 when another open file description locks the byte, 0 when none does. */
static int byte_taken(int fd, int byte)
{
  struct flock fl = one_byte(F_WRLCK, byte);
  if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
    return -errno;
  return fl.l_type != F_UNLCK;
}

/* Shared locks on the bytes of mask above base. */
static int lock_bytes(int fd, int base, unsigned mask)
{
  for (int i = 0; i < 8; i++) {
    if (!(mask & BIT(i)))
      continue;
    int r = lock_byte(fd, base + i, F_RDLCK);
    if (r < 0)
      return r;
  }
  return 0;
}

/* The first byte above base in mask another holder locks; -1 for none. */
static int first_taken(int fd, int base, unsigned mask, int *err)
{
  for (int i = 0; i < 8; i++) {
    if (!(mask & BIT(i)))
      continue;
    int r = byte_taken(fd, base + i);
    if (r < 0) {
      *err = r;
      return -1;
    }
    if (r)
      return i;
  }
  return -1;
}

/* The line for a lock we may not take: held is a permission another holds
 * that we refuse to share (only writing and resizing are refused, so that
 * is a writer), refused one we hold that another refuses (-1: none). */
static int refuse(const char *path, bool writing, int held, int refused)
{
  if (held >= 0)
    return vhd_error(EBUSY, "%s: in use by another process that writes it%s", path,
                     writing ? "" : " (use -U/--force-share to read it anyway)");
  if (refused == PERM_READ)
    return vhd_error(EBUSY, "%s: in use by another process that lets nobody read it", path);
  return vhd_error(EBUSY, "%s: in use by another process that reads it; it cannot be "
                   "written until that process closes it", path);
}

int file_lock_take(int fd, const char *path, bool writing)
{
  const struct role *me = writing ? &writer : &reader;
  int r = lock_bytes(fd, HOLDS_BASE, me->holds);
  if (r == 0)
    r = lock_bytes(fd, UNSHARES_BASE, me->unshares);
  if (r < 0) {
    file_lock_release(fd);
    if (unsupported(-r))
      return 0;
    return vhd_error(-r, "%s: cannot lock: %s", path, strerror(-r));
  }
  int err, held, refused;
  for (int attempt = 0;; attempt++) {
    err = 0;
    held = first_taken(fd, HOLDS_BASE, me->unshares, &err);
    refused = held < 0 && !err ? first_taken(fd, UNSHARES_BASE, me->holds, &err) : -1;
    if (err || (held < 0 && refused < 0) || attempt == CONFLICT_RETRIES)
      break;
    /* A process that was just killed can hold its locks for a moment
     * after its parent saw it exit (the kernel drops them when it
     * releases the file, which may come later): look again shortly. */
    struct timespec pause = { 0, CONFLICT_PAUSE_NS };
    nanosleep(&pause, NULL);
  }
  if (err || held >= 0 || refused >= 0)
    file_lock_release(fd);
  if (err)
    return unsupported(-err) ? 0 :
      vhd_error(-err, "%s: cannot test its lock: %s", path, strerror(-err));
  if (held >= 0 || refused >= 0)
    return refuse(path, writing, held, refused);
  return 0;
}

void file_lock_release(int fd)
{
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_UNLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = HOLDS_BASE;
  fl.l_len = UNSHARES_BASE + 8 - HOLDS_BASE;
  (void)fcntl(fd, F_OFD_SETLK, &fl);
}

#else  /* no OFD locks on this system: images are not locked */

int file_lock_take(int fd, const char *path, bool writing)
{
  (void)fd; (void)path; (void)writing;
  return 0;
}

void file_lock_release(int fd) { (void)fd; }

#endif
