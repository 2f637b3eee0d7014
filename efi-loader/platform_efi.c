/* SPDX-License-Identifier: BSD-3-Clause */
/* lib/platform.h over UEFI boot services: what the libvhd core needs from
 * its environment when it runs inside the loader.
 *
 * The loader is single-threaded (UEFI has no threads; the firmware may call
 * our BlockIo at TPL_CALLBACK, but never while the loader itself is inside
 * the core), so locks are no-ops and the error slot is one static buffer.
 * Everything here is safe at TPL_CALLBACK: AllocatePool, FreePool, GetTime
 * and the RNG protocol may all be called up to TPL_NOTIFY. */
#include "efi_env.h"
#include "platform.h"

/* ---- memory --------------------------------------------------------------
 * AllocatePool returns 8-byte aligned memory and does not tell the size of
 * a block, which realloc needs; a 16-byte header keeps both. */

struct pool_header {
  size_t size;
  size_t reserved;   /* keeps the payload 16-byte aligned relative to the pool */
};

void *vhd_malloc(size_t size)
{
  if (size > (size_t)-1 - sizeof(struct pool_header))
    return NULL;
  void *p = NULL;
  if (efi_bs->AllocatePool(EfiLoaderData, size + sizeof(struct pool_header), &p) != EFI_SUCCESS)
    return NULL;
  struct pool_header *h = p;
  h->size = size;
  return h + 1;
}

void *vhd_calloc(size_t n, size_t size)
{
  if (size && n > (size_t)-1 / size)
    return NULL;
  void *p = vhd_malloc(n * size);
  if (p)
    memset(p, 0, n * size);
  return p;
}

void vhd_free(void *p)
{
  if (p)
    efi_bs->FreePool((struct pool_header *)p - 1);
}

void *vhd_realloc(void *p, size_t size)
{
  if (!p)
    return vhd_malloc(size);
  size_t old = ((struct pool_header *)p - 1)->size;
  void *q = vhd_malloc(size);
  if (!q)
    return NULL;
  memcpy(q, p, old < size ? old : size);
  vhd_free(p);
  return q;
}

void *vhd_aligned_alloc(size_t align, size_t size)
{
  if (align < sizeof(void *))
    align = sizeof(void *);
  if (size > (size_t)-1 - align - sizeof(void *))
    return NULL;
  uint8_t *raw = vhd_malloc(size + align + sizeof(void *));
  if (!raw)
    return NULL;
  uintptr_t at = ((uintptr_t)raw + sizeof(void *) + align - 1) & ~(uintptr_t)(align - 1);
  ((void **)at)[-1] = raw;
  return (void *)at;
}

void vhd_aligned_free(void *p)
{
  if (p)
    vhd_free(((void **)p)[-1]);
}

/* ---- the C library functions the core (and gcc) call ---------------------
 * The compiler may turn a byte loop into a call to memcpy/memset, so this
 * file is built with -fno-tree-loop-distribute-patterns (CMakeLists.txt).
 * Word-sized copies matter: every sector the virtual disk serves passes
 * through memcpy at least once. */

typedef uint64_t __attribute__((may_alias)) word_t;

void *memcpy(void *dst, const void *src, size_t n)
{
  uint8_t *d = dst;
  const uint8_t *s = src;
  if ((((uintptr_t)d ^ (uintptr_t)s) & 7) == 0) {
    while (n && ((uintptr_t)d & 7)) {
      *d++ = *s++;
      n--;
    }
    while (n >= 8) {
      *(word_t *)d = *(const word_t *)s;
      d += 8;
      s += 8;
      n -= 8;
    }
  }
  while (n--)
    *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
  uint8_t *d = dst;
  const uint8_t *s = src;
  if (d <= s || d >= s + n)
    return memcpy(dst, src, n);
  while (n--)
    d[n] = s[n];
  return dst;
}

void *memset(void *dst, int c, size_t n)
{
  uint8_t *d = dst;
  uint8_t b = (uint8_t)c;
  while (n && ((uintptr_t)d & 7)) {
    *d++ = b;
    n--;
  }
  word_t w = 0x0101010101010101ull * b;
  while (n >= 8) {
    *(word_t *)d = w;
    d += 8;
    n -= 8;
  }
  while (n--)
    *d++ = b;
  return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
  const uint8_t *x = a, *y = b;
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i])
      return x[i] < y[i] ? -1 : 1;
  return 0;
}

size_t strlen(const char *s)
{
  size_t n = 0;
  while (s[n])
    n++;
  return n;
}

int strcmp(const char *a, const char *b)
{
  while (*a && *a == *b) {
    a++;
    b++;
  }
  return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
  for (; n; n--, a++, b++) {
    if (*a != *b)
      return (unsigned char)*a - (unsigned char)*b;
    if (!*a)
      return 0;
  }
  return 0;
}

/* ---- time ------------------------------------------------------------------ */

static uint64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
  /* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
   * algorithm). */
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (uint64_t)(era * 146097 + (int64_t)doe - 719468);
}

uint64_t vhd_time_now(void)
{
  EFI_TIME t;
  if (efi_rt->GetTime(&t, NULL) != EFI_SUCCESS || t.Year < 1970 || t.Month < 1 ||
      t.Month > 12 || t.Day < 1 || t.Day > 31)
    return 0;
  int64_t secs = (int64_t)days_from_civil(t.Year, t.Month, t.Day) * 86400 +
                 t.Hour * 3600 + t.Minute * 60 + t.Second;
  /* UEFI: local time = UTC - TimeZone (minutes); 2047 = unspecified. */
  if (t.TimeZone != EFI_UNSPECIFIED_TIMEZONE && t.TimeZone >= -1440 && t.TimeZone <= 1440)
    secs += (int64_t)t.TimeZone * 60;
  return secs > 0 ? (uint64_t)secs : 0;
}

/* ---- random UUIDs ------------------------------------------------------------
 * The RNG protocol when the firmware has one; otherwise a counter mixed
 * with the time and the monotonic count, which is unique per boot but not
 * unpredictable. The core uses UUIDs as identities (new image ids, VHDX
 * write GUIDs), for which uniqueness is what matters. */

static uint64_t splitmix64(uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void vhd_uuid_generate(uint8_t uuid[16])
{
  static EFI_RNG_PROTOCOL *rng;
  static bool rng_looked_up;
  static uint64_t counter;
  if (!rng_looked_up) {
    rng_looked_up = true;
    if (efi_bs->LocateProtocol(&guid_rng, NULL, (void **)&rng) != EFI_SUCCESS)
      rng = NULL;
  }
  if (!rng || rng->GetRNG(rng, NULL, 16, uuid) != EFI_SUCCESS) {
    UINT64 mono = 0;
    efi_bs->GetNextMonotonicCount(&mono);
    uint64_t state = vhd_time_now() ^ (mono << 17) ^ (++counter * 0x2545f4914f6cdd1dull);
    uint64_t a = splitmix64(&state), b = splitmix64(&state);
    for (int i = 0; i < 8; i++) {
      uuid[i] = (uint8_t)(a >> (8 * i));
      uuid[8 + i] = (uint8_t)(b >> (8 * i));
    }
  }
  uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);   /* version 4 */
  uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
}

/* ---- locks: nothing runs concurrently ------------------------------------ */

void vhd_rwlock_init(vhd_rwlock *l) { (void)l; }
void vhd_rwlock_destroy(vhd_rwlock *l) { (void)l; }
int vhd_rwlock_rdlock(vhd_rwlock *l) { (void)l; return 0; }
int vhd_rwlock_wrlock(vhd_rwlock *l) { (void)l; return 0; }
int vhd_rwlock_unlock(vhd_rwlock *l) { (void)l; return 0; }
void vhd_mutex_init(vhd_mutex *m) { (void)m; }
void vhd_mutex_destroy(vhd_mutex *m) { (void)m; }
void vhd_mutex_lock(vhd_mutex *m) { (void)m; }
void vhd_mutex_unlock(vhd_mutex *m) { (void)m; }

/* ---- errors ------------------------------------------------------------------ */

struct vhd_error_slot *vhd_error_slot(void)
{
  static struct vhd_error_slot slot;
  return &slot;
}

const char *vhd_strerror(int errnum)
{
  switch (errnum) {
  case EPERM: return "Operation not permitted";
  case ENOENT: return "No such file or directory";
  case EIO: return "Input/output error";
  case ENXIO: return "No such device or address";
  case E2BIG: return "Argument list too long";
  case EBADF: return "Bad file descriptor";
  case ENOMEM: return "Cannot allocate memory";
  case EACCES: return "Permission denied";
  case EEXIST: return "File exists";
  case EINVAL: return "Invalid argument";
  case EFBIG: return "File too large";
  case ENOSPC: return "No space left on device";
  case EROFS: return "Read-only file system";
  case ERANGE: return "Numerical result out of range";
  case ELOOP: return "Too many levels of symbolic links";
  case ENOTSUP: return "Operation not supported";
  case EOVERFLOW: return "Value too large for defined data type";
  case EILSEQ: return "Invalid or incomplete multibyte or wide character";
  case ECANCELED: return "Operation canceled";
  case EMEDIUMTYPE: return "Wrong medium type";
  default: return "Unknown error";
  }
}
