/* SPDX-License-Identifier: BSD-3-Clause */
#define _GNU_SOURCE 1  /* the GNU strerror_r */
/* The platform shim on a hosted POSIX system: libc, libuuid, pthreads. */
#include "platform.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

void *vhd_malloc(size_t size) { return malloc(size ? size : 1); }
void *vhd_calloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }
void *vhd_realloc(void *p, size_t size) { return realloc(p, size ? size : 1); }
void vhd_free(void *p) { free(p); }

void *vhd_aligned_alloc(size_t align, size_t size)
{
  void *p = NULL;
  if (posix_memalign(&p, align, size ? size : align) != 0)
    return NULL;
  return p;
}

void vhd_aligned_free(void *p) { free(p); }

uint64_t vhd_time_now(void) { return (uint64_t)time(NULL); }

/* 16 random bytes that never wait for the kernel's entropy pool: these
 * GUIDs name an image and its changes, they guard no secret. Early in a
 * boot, where vhdboot-attach serves a VHDX root, the pool is not ready;
 * libuuid's uuid_generate_random then retries for up to a second per
 * GUID, and a VHDX header update (two GUIDs) held the root's first write
 * for 2 s. */
static bool random_bytes_now(uint8_t *buf, size_t n)
{
#ifdef GRND_INSECURE
  if (getrandom(buf, n, GRND_INSECURE) == (ssize_t)n)
    return true;   /* Linux >= 5.6 */
#endif
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool ok = read(fd, buf, n) == (ssize_t)n;
  close(fd);
  return ok;
}

void vhd_uuid_generate(uint8_t uuid[16])
{
  if (random_bytes_now(uuid, 16)) {
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);   /* RFC 4122 version 4 */
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    return;
  }
  uuid_t u;
  uuid_generate_random(u);
  memcpy(uuid, u, 16);
}

void vhd_rwlock_init(vhd_rwlock *l) { pthread_rwlock_init(l, NULL); }
void vhd_rwlock_destroy(vhd_rwlock *l) { pthread_rwlock_destroy(l); }
int vhd_rwlock_rdlock(vhd_rwlock *l) { return -pthread_rwlock_rdlock(l); }
int vhd_rwlock_wrlock(vhd_rwlock *l) { return -pthread_rwlock_wrlock(l); }
int vhd_rwlock_unlock(vhd_rwlock *l) { return -pthread_rwlock_unlock(l); }
void vhd_mutex_init(vhd_mutex *m) { pthread_mutex_init(m, NULL); }
void vhd_mutex_destroy(vhd_mutex *m) { pthread_mutex_destroy(m); }
void vhd_mutex_lock(vhd_mutex *m) { pthread_mutex_lock(m); }
void vhd_mutex_unlock(vhd_mutex *m) { pthread_mutex_unlock(m); }

struct vhd_error_slot *vhd_error_slot(void)
{
  static _Thread_local struct vhd_error_slot slot;
  return &slot;
}

const char *vhd_strerror(int errnum)
{
  /* strerror_r's GNU variant returns a pointer that may not be buf. */
  static _Thread_local char buf[128];
  return strerror_r(errnum, buf, sizeof buf);
}
