/* SPDX-License-Identifier: BSD-3-Clause */
/* The vhd_io backend over host files (see efi_io.h). */
#include "efi_io.h"
#include "error.h"
#include "sfs.h"
#include "util/strfmt.h"

static struct efi_file *open_files;
static uint8_t *zero_chunk;   /* 64 KiB of zeros, allocated on first use */
#define ZERO_CHUNK (64u * 1024)

/* ---- paths ---------------------------------------------------------------- */

static bool is_sep(char c) { return c == '/' || c == '\\'; }

/* Appends the components of s to out (a '\'-separated absolute path of
 * capacity cap), resolving "." and "..". */
static void add_components(char *out, size_t cap, const char *s)
{
  while (*s) {
    while (is_sep(*s))
      s++;
    size_t n = 0;
    while (s[n] && !is_sep(s[n]))
      n++;
    if (n == 0)
      break;
    if (n == 1 && s[0] == '.') {
      /* nothing */
    } else if (n == 2 && s[0] == '.' && s[1] == '.') {
      char *last = out;
      for (char *p = out; *p; p++)
        if (*p == '\\')
          last = p;
      *last = '\0';
    } else {
      size_t len = strlen(out);
      if (len + 1 + n < cap) {
        out[len] = '\\';
        memcpy(out + len + 1, s, n);
        out[len + 1 + n] = '\0';
      }
    }
    s += n;
  }
}

char *efi_path_normalise(const char *dir, const char *path)
{
  size_t cap = (dir ? strlen(dir) : 0) + strlen(path) + 3;
  char *out = vhd_malloc(cap);
  if (!out)
    return NULL;
  out[0] = '\0';
  if (dir && !is_sep(path[0]))
    add_components(out, cap, dir);
  add_components(out, cap, path);
  if (!out[0])
    vhd_snprintf(out, cap, "\\");
  return out;
}

/* ---- host access through the extents -------------------------------------- */

/* Read or write [off, off + len) of the host file's mapped clusters,
 * ignoring the logical size (the reserve record and the mirrored trailer
 * live past it). One of rbuf/wbuf is set. */
static int phys_io(struct efi_file *f, uint64_t off, uint8_t *rbuf, const uint8_t *wbuf,
                   size_t len)
{
  while (len) {
    ptrdiff_t i = fsmap_extents_find(&f->ext, off);
    if (i < 0)
      return -EIO;
    const struct fsmap_extent *e = &f->ext.v[i];
    uint64_t in = off - e->file_offset;
    size_t n = e->length - in < len ? (size_t)(e->length - in) : len;
    int r;
    if (e->state == FSMAP_DATA)
      r = wbuf ? host_volume_write(f->vol, e->volume_offset + in, wbuf, n)
               : host_volume_read(f->vol, e->volume_offset + in, rbuf, n);
    else if (!wbuf)
      r = (memset(rbuf, 0, n), 0);
    else   /* see enum fsmap_extent_state: the data would be lost to the host */
      r = vhd_error(EROFS, "%s: bytes %llu-%llu of the file are %s on %s, which the loader "
                    "cannot write (run 'vhdtool boot-prepare' on the image first)", f->path,
                    (unsigned long long)off, (unsigned long long)(off + n - 1),
                    e->state == FSMAP_HOLE ? "a hole" : "an unwritten extent", f->vol->name);
    if (r < 0)
      return r;
    if (wbuf)
      wbuf += n;
    else
      rbuf += n;
    off += n;
    len -= n;
  }
  return 0;
}

static int phys_read(struct efi_file *f, uint64_t off, void *buf, size_t len)
{
  return phys_io(f, off, buf, NULL, len);
}

static int phys_write(struct efi_file *f, uint64_t off, const void *buf, size_t len)
{
  return phys_io(f, off, NULL, buf, len);
}

static int zero_fill(struct efi_file *f, uint64_t from, uint64_t to)
{
  if (!zero_chunk && !(zero_chunk = vhd_calloc(1, ZERO_CHUNK)))
    return -ENOMEM;
  while (from < to) {
    size_t n = to - from < ZERO_CHUNK ? (size_t)(to - from) : ZERO_CHUNK;
    int r = phys_write(f, from, zero_chunk, n);
    if (r < 0)
      return r;
    from += n;
  }
  return 0;
}

bool efi_file_first_unwritten(const struct efi_file *f, uint64_t *where)
{
  if (f->mode != EFI_FILE_MAPPED)
    return false;
  for (size_t i = 0; i < f->ext.count && f->ext.v[i].file_offset < f->phys_size; i++)
    if (f->ext.v[i].state != FSMAP_DATA && f->ext.v[i].file_offset < f->readable) {
      *where = f->ext.v[i].file_offset;
      return true;
    }
  if (f->readable < f->phys_size) {
    *where = f->readable;
    return true;
  }
  return false;
}

int efi_file_read_phys(struct efi_file *f, uint64_t off, void *buf, size_t len)
{
  if (off > f->phys_size || len > f->phys_size - off)
    return -EIO;
  if (f->mode == EFI_FILE_MEMORY) {
    memcpy(buf, f->data + off, len);
    return 0;
  }
  return phys_read(f, off, buf, len);
}

/* ---- vhd_io_ops ------------------------------------------------------------ */

static int ef_pread(void *opaque, void *buf, size_t count, uint64_t off)
{
  struct efi_file *f = opaque;
  uint64_t limit = f->size < f->readable ? f->size : f->readable;
  size_t n = off < limit ? (limit - off < count ? (size_t)(limit - off) : count) : 0;
  if (n) {
    if (f->mode == EFI_FILE_MEMORY) {
      memcpy(buf, f->data + off, n);
    } else {
      int r = phys_read(f, off, buf, n);
      if (r < 0)
        return r;
    }
  }
  memset((uint8_t *)buf + n, 0, count - n);
  return 0;
}

static int grow_to(struct efi_file *f, uint64_t end)
{
  if (end > f->capacity)
    return -ENOSPC;
  if (end <= f->size)
    return 0;
  int r = zero_fill(f, f->size, end);
  if (r < 0)
    return r;
  f->size = end;
  return 0;
}

static int ef_pwrite(void *opaque, const void *buf, size_t count, uint64_t off)
{
  struct efi_file *f = opaque;
  if (!f->writable || f->mode != EFI_FILE_MAPPED)
    return -EROFS;
  if (off > f->capacity || count > f->capacity - off)
    return -ENOSPC;
  int r = 0;
  if (off > f->size)
    r = grow_to(f, off);
  if (r == 0)
    r = phys_write(f, off, buf, count);
  if (r == 0 && off + count > f->size)
    f->size = off + count;
  return r;
}

static int ef_flush(void *opaque)
{
  struct efi_file *f = opaque;
  return f->mode == EFI_FILE_MAPPED && f->writable ? host_volume_flush(f->vol) : 0;
}

static int ef_get_size(void *opaque, uint64_t *size)
{
  *size = ((struct efi_file *)opaque)->size;
  return 0;
}

static int ef_set_size(void *opaque, uint64_t size)
{
  struct efi_file *f = opaque;
  if (!f->writable || f->mode != EFI_FILE_MAPPED)
    return -EROFS;
  if (size >= f->size)
    return grow_to(f, size);
  f->size = size;
  return 0;
}

static int ef_open_related(void *opaque, const char *path, unsigned flags, vhd_io **out)
{
  struct efi_file *f = opaque;
  /* The directory of this file: its path up to the last separator. */
  char *dir = vhd_strdup(f->path);
  if (!dir)
    return vhd_error(ENOMEM, "out of memory");
  char *last = dir;
  for (char *p = dir; *p; p++)
    if (*p == '\\')
      last = p;
  *last = '\0';
  char *full = efi_path_normalise(dir, path);
  vhd_free(dir);
  if (!full)
    return vhd_error(ENOMEM, "out of memory");
  int r = efi_file_open(f->vol, full, flags, f->mode == EFI_FILE_MEMORY, out);
  vhd_free(full);
  return r;
}

static void ef_close(void *opaque)
{
  struct efi_file *f = opaque;
  for (struct efi_file **pp = &open_files; *pp; pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      break;
    }
  fsmap_extents_free(&f->ext);
  vhd_free(f->data);
  vhd_free(f->path);
  vhd_free(f);
}

static const struct vhd_io_ops efi_file_ops = {
  .pread = ef_pread,
  .pwrite = ef_pwrite,
  .flush = ef_flush,
  .get_size = ef_get_size,
  .set_size = ef_set_size,
  .open_related = ef_open_related,
  .close = ef_close,
};

/* ---- opening ------------------------------------------------------------------ */

/* The mapper and the firmware's file system driver must agree on the
 * file's size and last bytes; a disagreement (a mapper bug, a stale FAT
 * cache) would otherwise surface later as a corrupt disk. */
static int cross_check(struct efi_file *f)
{
  uint64_t fw_size;
  int r = sfs_file_size(f->vol->sfs, f->path, &fw_size);
  if (r < 0)
    return r;
  if (fw_size != f->phys_size)
    return vhd_error(EIO, "%s: the firmware says the file has %llu bytes, the loader's "
                     "%s reader %llu", f->path, (unsigned long long)fw_size,
                     fsmap_kind_name(f->vol->map.kind), (unsigned long long)f->phys_size);
  uint8_t a[512], b[512];
  size_t n = f->phys_size < sizeof a ? (size_t)f->phys_size : sizeof a;
  uint64_t off = f->phys_size - n;
  if (n == 0)
    return 0;
  if ((r = sfs_read_at(f->vol->sfs, f->path, off, a, n)) < 0)
    return r;
  if ((r = ef_pread(f, b, n, off)) < 0)
    return vhd_error(-r, "%s: read through the extents failed", f->path);
  if (memcmp(a, b, n) != 0)
    return vhd_error(EIO, "%s: the loader's %s reader and the firmware disagree about the "
                     "file's last bytes", f->path, fsmap_kind_name(f->vol->map.kind));
  return 0;
}

static int open_mapped(struct efi_file *f)
{
  struct host_volume *vol = f->vol;
  if (!vol->mapped)
    return vhd_error(ENOTSUP, "%s: %s has no file system the loader can map (FAT, exFAT, "
                     "ext2/3/4, NTFS)", f->path, vol->name);
  struct fsmap_file ff;
  int r = fsmap_lookup(&vol->map, f->path, &ff);
  if (r == -ENOENT) {
    char whole[600];
    vhd_snprintf(whole, sizeof whole, "%s not found", f->path);
    if (strcmp(vol->map.error, whole) == 0)
      return vhd_error(ENOENT, "%s: not found on %s", f->path, vol->name);
    return vhd_error(ENOENT, "%s: not found on %s (%s)", f->path, vol->name, vol->map.error);
  }
  if (r < 0)
    return vhd_error(-r, "%s: %s: %s", f->path, vol->name, vol->map.error);
  if (ff.directory)
    return vhd_error(EINVAL, "%s: is a directory", f->path);
  r = fsmap_map(&vol->map, &ff, &f->ext);
  if (r < 0)
    return vhd_error(-r, "%s: %s: %s", f->path, vol->name, vol->map.error);
  f->mode = EFI_FILE_MAPPED;
  f->size = f->phys_size = ff.size;
  f->readable = ff.valid_size;
  /* Without a reserve a file can be rewritten but not grown; exFAT files
   * cannot be written past their valid data length (the directory entry
   * would have to change). */
  f->capacity = f->writable ? ff.valid_size : ff.size;
  return vol->sfs ? cross_check(f) : 0;
}

static int open_memory(struct efi_file *f)
{
  if (!f->vol->sfs)
    return vhd_error(ENOTSUP, "%s: the firmware cannot read %s and the loader cannot map it",
                     f->path, f->vol->name);
  if (f->writable)
    return vhd_error(EROFS, "%s: an image held in memory cannot be written back (mode=rw "
                     "needs a host partition the loader can map: FAT, exFAT, ext2/3/4 or NTFS)", f->path);
  int r = sfs_read_all(f->vol->sfs, f->path, &f->data, &f->phys_size);
  if ((r == -ENOMEM || r == -EFBIG) && !f->vol->mapped) {
    char why[160];
    vhd_snprintf(why, sizeof why, "%s", vhd_last_error());
    return vhd_error(-r, "%s: the loader cannot map %s (a file system it does not know) and "
                     "the file is too large to read into memory (%s)", f->path, f->vol->name,
                     why);
  }
  if (r < 0)
    return r;
  f->mode = EFI_FILE_MEMORY;
  f->size = f->readable = f->capacity = f->phys_size;
  return 0;
}

int efi_file_open(struct host_volume *vol, const char *path, unsigned flags, bool ram,
                  vhd_io **out)
{
  *out = NULL;
  struct efi_file *f = vhd_calloc(1, sizeof *f);
  char *norm = efi_path_normalise(NULL, path);
  if (!f || !norm) {
    vhd_free(f);
    vhd_free(norm);
    return vhd_error(ENOMEM, "out of memory");
  }
  f->vol = vol;
  f->path = norm;
  f->writable = (flags & VHD_IO_RDWR) != 0;
  int r = ram ? open_memory(f) : open_mapped(f);
  if (r == 0)
    r = vhd_io_new(&efi_file_ops, f, norm, flags & VHD_IO_RDWR, out);
  if (r < 0) {
    fsmap_extents_free(&f->ext);
    vhd_free(f->data);
    vhd_free(f->path);
    vhd_free(f);
    return r;
  }
  f->next = open_files;
  open_files = f;
  return 0;
}

struct efi_file *efi_file_find(const char *name)
{
  for (struct efi_file *f = open_files; f; f = f->next)
    if (strcmp(f->path, name) == 0)
      return f;
  return NULL;
}
