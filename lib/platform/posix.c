/* SPDX-License-Identifier: BSD-3-Clause */
#define _GNU_SOURCE 1  /* the GNU strerror_r */
/* The platform shim on a hosted POSIX system: libc, libuuid, pthreads. */
#include "platform.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
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

void vhd_uuid_generate(uint8_t uuid[16])
{
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
