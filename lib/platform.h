/* SPDX-License-Identifier: BSD-3-Clause */
/* The platform shim: everything the core needs from its environment.
 *
 * The read/write path of lib/ must also build freestanding (for the UEFI
 * loader), so core files include this header instead of libc headers. The
 * hosted build maps it to libc, libuuid and pthreads (platform/posix.c);
 * the loader brings its own implementation over UEFI boot services.
 */
#ifndef LIBVHD_PLATFORM_H
#define LIBVHD_PLATFORM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if __STDC_HOSTED__
#include <string.h>
#else
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
#endif

/* errno values the core returns (negated). Freestanding builds get the
 * Linux numbers, which is what every front end reports. */
#if __STDC_HOSTED__
#include <errno.h>
#else
#define EPERM 1
#define ENOENT 2
#define EIO 5
#define ENXIO 6
#define E2BIG 7
#define EBADF 9
#define EBUSY 16
#define ENOMEM 12
#define EACCES 13
#define EEXIST 17
#define EINVAL 22
#define EFBIG 27
#define ENOSPC 28
#define EROFS 30
#define ERANGE 34
#define EDEADLK 35
#define ELOOP 40
#define ENOTSUP 95
#define EOPNOTSUPP 95
#define EOVERFLOW 75
#define EILSEQ 84
#define ECANCELED 125
#define EMEDIUMTYPE 124
#endif

/* Memory. vhd_malloc returns NULL on failure; callers turn that into
 * -ENOMEM with a message. */
void *vhd_malloc(size_t size);
void *vhd_calloc(size_t n, size_t size);
void *vhd_realloc(void *p, size_t size);
void vhd_free(void *p);
/* Memory aligned for direct I/O and fast zero checks (align: power of 2). */
void *vhd_aligned_alloc(size_t align, size_t size);
void vhd_aligned_free(void *p);

/* Seconds since 1970-01-01 UTC. */
uint64_t vhd_time_now(void);

/* 16 random bytes forming an RFC 4122 version 4 UUID. */
void vhd_uuid_generate(uint8_t uuid[16]);

/* Locks. The loader is single-threaded and compiles these to nothing. */
#if defined(VHD_NO_THREADS) || !__STDC_HOSTED__
typedef struct { int unused; } vhd_rwlock;
typedef struct { int unused; } vhd_mutex;
#else
#include <pthread.h>
typedef pthread_rwlock_t vhd_rwlock;
typedef pthread_mutex_t vhd_mutex;
#endif
void vhd_rwlock_init(vhd_rwlock *l);
void vhd_rwlock_destroy(vhd_rwlock *l);
/* 0 or -errno (-EDEADLK: this thread holds the lock already, where the
 * host can tell; image.c tells for itself, platform-neutrally). */
int vhd_rwlock_rdlock(vhd_rwlock *l);
int vhd_rwlock_wrlock(vhd_rwlock *l);
int vhd_rwlock_unlock(vhd_rwlock *l);
void vhd_mutex_init(vhd_mutex *m);
void vhd_mutex_destroy(vhd_mutex *m);
void vhd_mutex_lock(vhd_mutex *m);
void vhd_mutex_unlock(vhd_mutex *m);

/* The per-thread slot that holds the last error (see lib/error.c) and the
 * image locks the thread holds (image_lock in image.c). */
#define VHD_HELD_LOCKS_MAX 64
struct vhd_error_slot {
  int errnum;
  char message[1024];
  const void *held[VHD_HELD_LOCKS_MAX];
  unsigned held_count;
};
struct vhd_error_slot *vhd_error_slot(void);

/* Text of an errno value ("No such file or directory"); never NULL. */
const char *vhd_strerror(int errnum);

#endif
