/* SPDX-License-Identifier: BSD-3-Clause */
/* libvhd - read, write and manage VHD and VHDX virtual disk images.
 *
 * This header is the whole public interface. It is also the manual: every
 * function states its contract where it is declared.
 *
 * Conventions (as in libnbd and zlib):
 *  - Handles are opaque. Whoever opens or creates a handle closes it
 *    (vhd_close, vhd_io_close); a call that fails leaves *out NULL.
 *  - Every function that can fail returns 0 (or a non-negative count) on
 *    success and a negative errno value on failure. After a failure,
 *    vhd_last_error() returns a one-line message that names the file and
 *    what is wrong, and vhd_last_errno() the positive errno. Both are kept
 *    per thread.
 *  - Offsets and lengths are in bytes of the virtual disk unless a name says
 *    otherwise.
 *  - One vhd_image may be used from several threads at once: reads of
 *    allocated data run in parallel, allocation and metadata updates are
 *    serialised inside the library.
 *  - Pointer arguments must not be NULL unless their comment says so.
 *    Strings and structs passed in are only read during the call (the
 *    library keeps copies); pointers the library hands out (names, paths,
 *    parents) belong to the handle they came from and live as long as it.
 *  - Callbacks (vhd_io_ops, progress, check reports, map extents) must not
 *    call back into the image their call is for: that fails with -EDEADLK.
 *
 * Sized structs (the ABI of libvhd.so.1, docs/ARCHITECTURE.md "Public
 * API"). Members are only ever added at the end of a struct, past the
 * previous layout's sizeof (never into its trailing padding, which an old
 * program may leave as anything), and the library learns how large the
 * caller's struct is: a parameter struct
 * (vhd_open_params, vhd_create_params) from its struct_size member, which
 * its init function sets; vhd_io_ops and every struct the library fills
 * from the size the call's macro passes (vhd_get_info(img, &info) is
 * vhd_get_info_sized(img, &info, sizeof(struct vhd_info))), so source
 * written against one 1.x header builds against every later one.
 *  - A size below the struct's first libvhd.so.1 layout is -EINVAL.
 *  - A struct the caller fills that is shorter than this library's (an
 *    older program) gets the defaults for the members it lacks; a longer
 *    one (a newer program) is taken when the bytes this library does not
 *    know are zero (options left unused), else -EINVAL.
 *  - A struct the library fills is written up to the caller's size and no
 *    further; one longer than this library's is -EINVAL (the library
 *    cannot fill what it does not know).
 */
#ifndef LIBVHD_VHD_H
#define LIBVHD_VHD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VHD_API __attribute__((visibility("default")))
#else
#define VHD_API
#endif

/* The version, in this one place: the build (CMakeLists.txt) reads it
 * from here. */
#define LIBVHD_VERSION_MAJOR 0
#define LIBVHD_VERSION_MINOR 1
#define LIBVHD_VERSION_PATCH 0
#define LIBVHD_STRINGIFY_(x) #x
#define LIBVHD_STRINGIFY(x) LIBVHD_STRINGIFY_(x)
#define LIBVHD_VERSION_STRING LIBVHD_STRINGIFY(LIBVHD_VERSION_MAJOR) "." \
  LIBVHD_STRINGIFY(LIBVHD_VERSION_MINOR) "." LIBVHD_STRINGIFY(LIBVHD_VERSION_PATCH)

/* Returns the library version as "MAJOR.MINOR.PATCH" (a static string). */
VHD_API const char *vhd_version(void);

/* ------------------------------------------------------------------ */
/* Errors                                                              */

/* Message of the last failure on this thread ("" if none). The string
 * stays valid until the next libvhd call on this thread. */
VHD_API const char *vhd_last_error(void);

/* errno of the last failure on this thread (positive), 0 if none. */
VHD_API int vhd_last_errno(void);

/* ------------------------------------------------------------------ */
/* Formats and types                                                   */

enum vhd_format {
  VHD_FORMAT_AUTO = 0,   /* probe by content (never by file name) */
  VHD_FORMAT_RAW = 1,
  VHD_FORMAT_VHD = 2,
  VHD_FORMAT_VHDX = 3,
  VHD_FORMAT_QCOW2 = 4,  /* read only (open, convert from, serve) */
  VHD_FORMAT_VMDK = 5,   /* read only: sparse and stream-optimized */
  VHD_FORMAT_VDI = 6,    /* read only: fixed and dynamic */
};

enum vhd_disk_type {
  VHD_TYPE_NONE = 0,          /* raw files have no type */
  VHD_TYPE_FIXED = 2,
  VHD_TYPE_DYNAMIC = 3,
  VHD_TYPE_DIFFERENCING = 4,
};

/* Names used on command lines and in JSON: "raw", "vhd", "vhdx", "qcow2",
 * "vmdk", "vdi";
 * "fixed", "dynamic", "differencing". NULL for values out of range (and for
 * VHD_TYPE_NONE). */
VHD_API const char *vhd_format_name(enum vhd_format format);
VHD_API const char *vhd_type_name(enum vhd_disk_type type);

/* ------------------------------------------------------------------ */
/* I/O backends                                                        */

/* The container file is reached only through a vhd_io. libvhd brings a
 * POSIX file backend and an in-memory backend; a program (the UEFI loader,
 * a test) may bring its own by filling in vhd_io_ops. */
typedef struct vhd_io vhd_io;

/* pread, get_size and close are required; every other member may be NULL
 * and the library then never calls it (what that means is said at each).
 * Members may be called from several threads at once (reads, and writes
 * to different ranges, run in parallel): a backend that cannot take that
 * must serialise itself. They must not call into a vhd_image that uses
 * this backend. Each returns 0 or -errno. The table is sized (above):
 * vhd_io_new passes sizeof(struct vhd_io_ops), and members a shorter
 * (older) table lacks are NULL. */
struct vhd_io_ops {
  /* Read exactly count bytes at offset. Bytes past the end of the file
   * read as zeros. 0 or -errno. */
  int (*pread)(void *opaque, void *buf, size_t count, uint64_t offset);
  /* Write exactly count bytes at offset, growing the file if needed.
   * Optional (NULL: a read-only file; writes fail with -EROFS). */
  int (*pwrite)(void *opaque, const void *buf, size_t count, uint64_t offset);
  /* Make every completed write durable. Optional (NULL: writes are
   * durable when they return, flush succeeds). */
  int (*flush)(void *opaque);
  /* Current length of the file in bytes. */
  int (*get_size)(void *opaque, uint64_t *size);
  /* Set the length of the file (grow with zeros or cut). Optional (NULL:
   * the length cannot change; what needs it fails with -EROFS). */
  int (*set_size)(void *opaque, uint64_t size);
  /* Optional (NULL): give back the host space of a range, which then reads
   * as zeros. -ENOTSUP (or -EOPNOTSUPP, the same on Linux) when the host
   * cannot; the library itself only ever says -ENOTSUP. */
  int (*punch_hole)(void *opaque, uint64_t offset, uint64_t length);
  /* Optional (NULL): find the next data at or after offset: *data is set to
   * the first data byte (or the file size when none) and *hole to the first
   * hole byte after *data. Lets raw sources skip holes quickly. */
  int (*find_data)(void *opaque, uint64_t offset, uint64_t *data, uint64_t *hole);
  /* Optional (NULL): host bytes the file occupies (st_blocks). */
  int (*allocated_size)(void *opaque, uint64_t *bytes);
  /* Optional (NULL): open another file of the same namespace (a parent
   * image). A relative path is relative to the directory of this file.
   * flags: VHD_IO_RDONLY or VHD_IO_RDWR. -ENOENT when it does not exist. */
  int (*open_related)(void *opaque, const char *path, unsigned flags, vhd_io **out);
  /* Release the backend's resources. */
  void (*close)(void *opaque);
};

#define VHD_IO_RDONLY 0x0u
#define VHD_IO_RDWR   0x1u
#define VHD_IO_CREATE 0x2u  /* create the file, failing if it exists */
#define VHD_IO_TRUNC  0x4u  /* with CREATE: replace an existing file */
#define VHD_IO_NOLOCK 0x8u  /* take no lock on the file (see VHD_OPEN_FORCE_SHARE) */

/* Wrap a backend. name is used in error messages (copied; NULL: "(unnamed)").
 * ops is read at every call: it must outlive the vhd_io (a static table).
 * On success the vhd_io owns opaque: closing it calls ops->close(opaque);
 * on failure nothing is called and the caller still owns opaque. */
VHD_API int vhd_io_new_sized(const struct vhd_io_ops *ops, size_t ops_size, void *opaque,
                             const char *name, unsigned flags, vhd_io **out);
#define vhd_io_new(ops, opaque, name, flags, out) \
  vhd_io_new_sized((ops), sizeof(struct vhd_io_ops), (opaque), (name), (flags), (out))

/* A file on the host, opened with O_CLOEXEC. */
VHD_API int vhd_io_open_file(const char *path, unsigned flags, vhd_io **out);

/* An export of an NBD server, by libnbd URI (nbd://host:port/export,
 * nbd+unix:///export?socket=PATH), read through a block cache (64 MiB).
 * The export's size is fixed: a write past its end fails with -ENOSPC.
 * A differencing image's parents are taken only from parent_uris (NULL
 * or a NULL-terminated list: parent, grandparent, ...), and checked by
 * identity; without one its open fails naming the locator. -ENOTSUP when
 * libvhd was built without libnbd. */
VHD_API int vhd_io_open_nbd(const char *uri, const char *const *parent_uris,
                            unsigned flags, vhd_io **out);
/* 1 when s is an NBD URI (nbd://, nbds://, nbd+unix://, ...), which
 * vhd_convert then writes over as a fixed-size target (raw output only,
 * with VHD_CREATE_OVERWRITE), as it does a block device. */
VHD_API int vhd_is_nbd_uri(const char *s);

/* A growable in-memory file, initialised with a copy of data[0..size).
 * data may be NULL when size is 0; name may be NULL ("memory"). */
VHD_API int vhd_io_new_memory(const void *data, size_t size, const char *name,
                      unsigned flags, vhd_io **out);

/* Copy out the current contents of an in-memory file: *data is allocated
 * with malloc() and owned by the caller. -EINVAL for other backends. */
VHD_API int vhd_io_memory_contents(vhd_io *io, void **data, size_t *size);

/* The name given at creation (the path for files), owned by io; NULL
 * when io is NULL. */
VHD_API const char *vhd_io_name(const vhd_io *io);

/* Close the backend. NULL is allowed. */
VHD_API void vhd_io_close(vhd_io *io);

/* ------------------------------------------------------------------ */
/* Opening and closing images                                          */

typedef struct vhd_image vhd_image;

#define VHD_OPEN_RDONLY     0x0u
#define VHD_OPEN_RDWR       0x1u   /* the top image only; parents stay read-only */
#define VHD_OPEN_NO_PARENT  0x2u   /* do not open the parent chain (info, check);
                                      reads of parent-backed ranges fail with -ENXIO */
#define VHD_OPEN_RAW        0x4u   /* skip probing: treat the file as raw */
#define VHD_OPEN_RAW_PARENT 0x8u   /* a raw file may be the parent of a
                                      differencing VHD whose parent id is zero
                                      (blktap's raw parents). Without it a raw
                                      file is never a parent: anything probes
                                      as raw, so a locator could name any file
                                      on the host. */
#define VHD_OPEN_FORCE_SHARE 0x10u /* read-only opens: take no lock, so an
                                      image another process is writing can be
                                      inspected (what is read may be
                                      inconsistent), as qemu-img's -U */
#define VHD_OPEN_PARENTS_BESIDE 0x20u /* parents only in the image's own
                                      directory and below (see
                                      vhd_open_params.parent_dir) */
/* The identity a differencing child's parent link names (VHDX: the data
 * write GUID, which a writer renews at its first change; a VHD's unique id
 * never changes by writing), for a read-write open; vhd_merge uses both. */
#define VHD_OPEN_KEEP_LINK_ID 0x40u  /* this session's writes keep it, so the
                                      children linked to the image go on
                                      opening (a merge writes their own data
                                      into it); any other child is then stale
                                      and not told */
#define VHD_OPEN_RENEW_LINK_ID 0x80u /* the open gives the image a new one, so
                                      every child linked to the old one is
                                      refused from now on */

/* Open the image at path, probing its format by content. A differencing
 * image opens its whole chain (parents read-only, owned by the image).
 * Errors name the file and the field at fault. */
VHD_API int vhd_open(const char *path, unsigned flags, vhd_image **out);

/* Open an image over an I/O backend with a given format (or
 * VHD_FORMAT_AUTO). On success the image owns io; on failure io is closed.
 * Its parents are opened through io's open_related. */
VHD_API int vhd_open_io(vhd_io *io, enum vhd_format format, unsigned flags,
                vhd_image **out);

/* Where a differencing image's parents may come from. Images are often
 * someone else's (an upload, a download): their locators may name any path,
 * so a program that serves or converts such images confines them.
 *
 *  - Parents are found only through the image's locators, each tried as a
 *    path relative to the child's directory (Windows absolute paths such as
 *    "C:\dir\base.vhd" are not host paths: only their file name is tried,
 *    beside the child). A candidate outside the allowed directory is not
 *    opened or even looked up, so no message tells whether it exists.
 *  - A parent is taken only when its identity matches the child's link (VHD
 *    unique id, VHDX data write GUID). A parent id of all zeros matches
 *    nothing but a raw file, and a raw file only with VHD_OPEN_RAW_PARENT.
 *  - Only regular files and block devices are opened, never FIFOs or
 *    devices that could block.
 *
 * flags: VHD_OPEN_*. With VHD_OPEN_PARENTS_BESIDE every parent in the chain
 * must lie in the top image's directory or below it; with parent_dir set,
 * in that directory or below it (both: either place). Containment is judged
 * on the path as written and again on the opened file's real path, so a
 * symbolic link cannot lead out. Without either, parents may be anywhere
 * the locators say. */
struct vhd_open_params {
  size_t struct_size;          /* set by vhd_open_params_init (sized, above) */
  unsigned flags;              /* VHD_OPEN_* */
  enum vhd_format format;      /* VHD_FORMAT_AUTO: probe */
  const char *parent_dir;      /* NULL: no directory confinement */
};

/* Fill p with defaults: read-only, probe the format, parents anywhere the
 * locators say (no raw parents), and struct_size. 0, or -EINVAL for a size
 * below the first layout. */
VHD_API int vhd_open_params_init_sized(struct vhd_open_params *p, size_t size);
#define vhd_open_params_init(p) \
  vhd_open_params_init_sized((p), sizeof(struct vhd_open_params))

/* vhd_open and vhd_open_io with parameters. */
VHD_API int vhd_open_with(const char *path, const struct vhd_open_params *p,
                          vhd_image **out);
VHD_API int vhd_open_io_with(vhd_io *io, const struct vhd_open_params *p,
                             vhd_image **out);

/* Flush (if writable) and release the image and its parents. Returns the
 * flush result; the image is released in every case. NULL is allowed. */
VHD_API int vhd_close(vhd_image *img);

/* ------------------------------------------------------------------ */
/* Creating images                                                     */

struct vhd_create_params {
  size_t struct_size;          /* set by vhd_create_params_init (sized, above) */
  enum vhd_format format;      /* VHD_FORMAT_VHD, VHDX or RAW */
  enum vhd_disk_type type;     /* default DYNAMIC; DIFFERENCING needs parent */
  uint64_t size;               /* virtual size in bytes, rounded up to the
                                  sector size; 0 = the parent's (differencing) */
  uint32_t block_size;         /* 0 = format default (VHD 2 MiB, VHDX 32 MiB) */
  uint32_t logical_sector_size;  /* 0 = 512; VHDX may use 4096 */
  uint32_t physical_sector_size; /* 0 = 4096 for VHDX; VHD ignores it */
  const char *parent;          /* differencing: path of the parent image
                                  (NULL otherwise) */
  unsigned flags;              /* VHD_CREATE_* */
};

#define VHD_CREATE_OVERWRITE   0x1u  /* replace an existing file */
#define VHD_CREATE_CHS_ROUND   0x2u  /* VHD: round the size up to a CHS product
                                        (Virtual PC compatible) */

/* Fill p with defaults: format VHD, type dynamic, everything else 0, and
 * struct_size. 0, or -EINVAL for a size below the first layout. */
VHD_API int vhd_create_params_init_sized(struct vhd_create_params *p, size_t size);
#define vhd_create_params_init(p) \
  vhd_create_params_init_sized((p), sizeof(struct vhd_create_params))

/* Create a new image. When out is non-NULL the image is returned open
 * read-write (the caller closes it); otherwise it is closed. Unknown
 * p->flags are -EINVAL. */
VHD_API int vhd_create(const char *path, const struct vhd_create_params *p,
               vhd_image **out);

/* Create over an I/O backend (which must be empty and writable). The image
 * owns io on success; on failure io is closed. A differencing image's parent
 * is opened through io's open_related. */
VHD_API int vhd_create_io(vhd_io *io, const struct vhd_create_params *p,
                  vhd_image **out);

/* ------------------------------------------------------------------ */
/* I/O on the virtual disk                                             */

/* Read count bytes at offset. Reading past the virtual size is -EINVAL. */
VHD_API int vhd_pread(vhd_image *img, void *buf, size_t count, uint64_t offset);

/* Write count bytes at offset (any alignment: unaligned edges are
 * read-modify-written through the chain). Allocates blocks as needed; a
 * write of zeros into an unallocated block of a dynamic image allocates
 * nothing. Not durable until vhd_flush(). */
VHD_API int vhd_pwrite(vhd_image *img, const void *buf, size_t count, uint64_t offset);

/* Make every completed write durable (data, then metadata). */
VHD_API int vhd_flush(vhd_image *img);

/* A trim: give back the space the range holds. Nothing is written and
 * nothing allocated, so afterwards each part of the range reads as zeros
 * or as it did before (use vhd_zero for zeros). Whole blocks are freed
 * (in a VHD child only where the parent reads zeros); in part of a block
 * the host file's 4 KiB pages are punched, and a block whose trims during
 * this open add up to all of it is freed. Freed block slots take new
 * blocks before the file grows. */
VHD_API int vhd_discard(vhd_image *img, uint64_t offset, uint64_t length);

/* Afterwards the range reads as zeros. With VHD_ZERO_MAY_TRIM whole blocks
 * may be freed; with VHD_ZERO_FAST it fails with -ENOTSUP instead of
 * writing zeros the slow way. */
#define VHD_ZERO_MAY_TRIM 0x1u
#define VHD_ZERO_FAST     0x2u
VHD_API int vhd_zero(vhd_image *img, uint64_t offset, uint64_t length, unsigned flags);

/* Allocation of the range starting at offset. *status gets VHD_STATUS_*
 * flags for a run of *run bytes (1 <= *run <= length) that share them;
 * *layer (if non-NULL) gets the chain depth holding the data (0 = this
 * image, 1 = its parent, ...) or -1 when no layer holds it. A run ends on
 * a logical sector boundary or at offset + length: a sector that is partly
 * data (a parent ending inside it) is reported as data. */
#define VHD_STATUS_DATA 0x1u   /* allocated in some layer */
#define VHD_STATUS_ZERO 0x2u   /* known to read as zeros */
VHD_API int vhd_block_status(vhd_image *img, uint64_t offset, uint64_t length,
                     unsigned *status, uint64_t *run, int *layer);

/* ------------------------------------------------------------------ */
/* Information                                                         */

struct vhd_info {
  enum vhd_format format;
  enum vhd_disk_type type;
  uint64_t virtual_size;       /* bytes the guest sees */
  uint64_t file_size;          /* length of the container file */
  uint32_t block_size;         /* dynamic/differencing; 0 otherwise */
  uint32_t logical_sector_size;
  uint32_t physical_sector_size;
  uint64_t allocated_blocks;   /* blocks holding data in this layer */
  uint64_t total_blocks;       /* blocks the virtual size spans */
  char creator[64];            /* e.g. "win 10.0 (Wi2k)" or the VHDX creator */
  uint8_t id[16];              /* VHD unique id / VHDX virtual disk id */
  uint8_t data_write_id[16];   /* VHDX data write GUID; zeros for VHD */
  uint8_t parent_id[16];       /* differencing: parent identity expected */
  const char *path;            /* this image's path (owned by the image) */
  const char *parent_path;     /* resolved parent path, NULL if none or not
                                  opened (owned by the image) */
  const char *parent_hint;     /* first parent locator, as stored, or NULL */
  uint16_t cylinders;          /* VHD CHS geometry */
  uint8_t heads;
  uint8_t sectors_per_track;
  unsigned chain_depth;        /* 0 for a base image */
  unsigned warnings;           /* non-fatal problems seen while opening */
  uint64_t free_slot_bytes;    /* block slots inside the file that no block
                                  uses: reused by new blocks, given back by
                                  vhd_compact */
};

/* Fill info (sized, above); its strings belong to img. */
VHD_API int vhd_get_info_sized(vhd_image *img, struct vhd_info *info, size_t info_size);
#define vhd_get_info(img, info) vhd_get_info_sized((img), (info), sizeof(struct vhd_info))

/* The room vhdboot.efi's rw mode keeps after the image inside its file
 * (docs/efi-handoff.md, "Reserve"). Such a file is read and written as the
 * image [0, logical_size); new blocks go into the reserve first, and
 * vhd_compact or a check with VHD_CHECK_REPAIR gives the unused part back. */
struct vhd_reserve {
  uint64_t logical_size;   /* where the image ends in the file */
  uint64_t physical_size;  /* the file's length */
  uint64_t free_bytes;     /* unused reserve, between the image and the record */
  uint32_t trailer_bytes;  /* after the record: 512 (the VHD footer's copy) or 0 */
};
/* 0 and *out set (sized, above) when img's file has a reserve; -ENOENT (no
 * message) when it has none or img is NULL. */
VHD_API int vhd_get_reserve_sized(vhd_image *img, struct vhd_reserve *out, size_t out_size);
#define vhd_get_reserve(img, out) \
  vhd_get_reserve_sized((img), (out), sizeof(struct vhd_reserve))

/* The parent of a differencing image (owned by the child: never closed by
 * the caller), NULL otherwise or when img is NULL. */
VHD_API vhd_image *vhd_get_parent(vhd_image *img);

/* Which layer of img's chain is stored in the file at path: 0 for img, 1
 * for its parent, ...; the same file, not the same name, so a symbolic or
 * hard link to a layer counts. -ENOENT when none is (or path cannot be
 * looked at). The rule vhd_convert and vhd_merge use to refuse an output
 * that is a layer of their source. */
VHD_API int vhd_chain_layer_of(vhd_image *img, const char *path);

/* ------------------------------------------------------------------ */
/* Operations                                                          */

/* Progress callbacks get the work done and the total in the same unit;
 * returning non-zero cancels the operation (-ECANCELED). A NULL callback
 * is no progress report.
 * Callbacks (progress, check reports, map extents) must not call back into
 * the image they are called for: the operation holds the image's lock, so
 * such a call fails with -EDEADLK (and a message) rather than wait for
 * itself. Other images may be used freely. */
typedef int (*vhd_progress_fn)(void *opaque, uint64_t done, uint64_t total);

/* Copy src's virtual disk (through its whole chain) into a new image at
 * dst_path made with p (p->size 0 = src's size). All-zero blocks stay
 * unallocated in dynamic outputs and become holes in raw ones. On failure
 * the output file is removed. The output is written data before metadata
 * but not flushed (like `qemu-img convert`, whose default is cache=unsafe):
 * when the call returns it may still be in the host's cache, and a host
 * crash soon after can lose it. With VHD_CONVERT_SYNC in flags it is
 * flushed to stable storage (data, then metadata) before the call returns.
 * With VHD_CONVERT_DIRECT the data is written around the host's page cache
 * (O_DIRECT) where the file system allows; metadata, unaligned tails and a
 * dynamic VHD's data (512 bytes into each block) still go through it. That
 * wins where new page-cache pages are expensive (a loaded VM that returns
 * free memory to its host) and loses where the disk is the slower part.
 * With p->parent set (convert onto a base, `qemu-img convert -B`), dst is
 * a new differencing image over that base (p->type DIFFERENCING or left
 * at its default; locators and identity as vhd_create makes them; format
 * VHD_FORMAT_AUTO: the base's, VHD over raw; block and sector sizes the
 * base's when 0 and the formats agree) holding only
 * the sectors where src reads differently from the base, zeros included;
 * ranges both report as zeros are not read. Such an output is always
 * flushed before the call returns. src stays the caller's (it is only
 * read); progress may be NULL. Unknown flags are -EINVAL. */
#define VHD_CONVERT_SYNC   0x1u  /* the output is durable when the call returns */
#define VHD_CONVERT_DIRECT 0x2u  /* write the data around the host's page cache */
VHD_API int vhd_convert(vhd_image *src, const char *dst_path,
                const struct vhd_create_params *p, unsigned flags,
                vhd_progress_fn progress, void *opaque);

enum vhd_check_severity {
  VHD_CHECK_INFO = 0,        /* a note, nothing wrong */
  VHD_CHECK_WARNING = 1,     /* odd but harmless */
  VHD_CHECK_LEAK = 2,        /* space no structure uses */
  VHD_CHECK_CORRUPTION = 3,  /* a structure is wrong */
};

/* message is valid during the call only. */
typedef void (*vhd_check_report_fn)(void *opaque, enum vhd_check_severity sev,
                                    const char *message);

struct vhd_check_result {
  enum vhd_format format;
  enum vhd_disk_type type;
  unsigned corruptions;
  unsigned leaks;
  unsigned warnings;
  uint64_t leaked_bytes;
  int log_needs_replay;        /* VHDX: the log holds entries to replay */
  unsigned repairs;            /* VHD_CHECK_REPAIR: changes made */
};

/* vhd_check flags. */
#define VHD_CHECK_REPAIR 0x1u  /* fix what can be fixed safely (each change
                                  reported as VHD_CHECK_INFO "repaired: ...") */

/* Validate every structure of the image at path (and its parent link).
 * Each finding goes to report (may be NULL), except that of each kind
 * (one message template) only the first 10 do; the rest are counted in
 * *result, and one VHD_CHECK_INFO finding per kind at the end says how many
 * were left out. Returns 0 when the check ran (look at *result, sized,
 * above), negative when it could not run at all. */
VHD_API int vhd_check_sized(const char *path, unsigned flags, vhd_check_report_fn report,
                            void *opaque, struct vhd_check_result *result,
                            size_t result_size);
#define vhd_check(path, flags, report, opaque, result) \
  vhd_check_sized((path), (flags), (report), (opaque), (result), \
                  sizeof(struct vhd_check_result))

/* vhd_check with open parameters (where parents may come from, locking);
 * p->flags' read-write bit is ignored (VHD_CHECK_REPAIR decides). */
VHD_API int vhd_check_with_sized(const char *path, const struct vhd_open_params *p,
                                 unsigned flags, vhd_check_report_fn report, void *opaque,
                                 struct vhd_check_result *result, size_t result_size);
#define vhd_check_with(path, p, flags, report, opaque, result) \
  vhd_check_with_sized((path), (p), (flags), (report), (opaque), (result), \
                       sizeof(struct vhd_check_result))

/* Same over a backend (does not take ownership of io: the caller closes
 * it, also on failure). */
VHD_API int vhd_check_io_sized(vhd_io *io, unsigned flags, vhd_check_report_fn report,
                               void *opaque, struct vhd_check_result *result,
                               size_t result_size);
#define vhd_check_io(io, flags, report, opaque, result) \
  vhd_check_io_sized((io), (flags), (report), (opaque), (result), \
                     sizeof(struct vhd_check_result))

/* ------------------------------------------------------------------ */
/* Maintenance operations. Each runs on an image opened read-write (or on
 * paths, where several files change) and takes an optional progress
 * callback (NULL: none); returning non-zero from it cancels with
 * -ECANCELED, leaving a valid image. An image passed in stays open and the
 * caller's, also on failure. */

/* Change the virtual size. Growing always works; shrinking needs
 * VHD_RESIZE_SHRINK, and is refused (-ENOTEMPTY) when data lies past the
 * new end unless VHD_RESIZE_FORCE. A crash at any point leaves the old or
 * the new size, never a broken image. */
#define VHD_RESIZE_SHRINK 0x1u
#define VHD_RESIZE_FORCE  0x2u
VHD_API int vhd_resize(vhd_image *img, uint64_t new_size, unsigned flags,
                       vhd_progress_fn progress, void *opaque);

/* Free blocks that read as zeros and give the space back to the host
 * (VHD and VHDX: later blocks move down into the gaps and the file is
 * truncated; a VHDX block becomes NOT_PRESENT or ZERO). Content is
 * unchanged. */
struct vhd_compact_result {
  uint64_t blocks_freed;
  uint64_t file_size_before;
  uint64_t file_size_after;
  uint64_t host_bytes_before;  /* allocated on the host (holes excluded) */
  uint64_t host_bytes_after;
};
/* result may be NULL; else it is filled (sized, above). */
VHD_API int vhd_compact_sized(vhd_image *img, unsigned flags,
                              vhd_progress_fn progress, void *opaque,
                              struct vhd_compact_result *result, size_t result_size);
#define vhd_compact(img, flags, progress, opaque, result) \
  vhd_compact_sized((img), (flags), (progress), (opaque), (result), \
                    sizeof(struct vhd_compact_result))

/* Make img's file ready for vhdboot.efi's rw mode on a host file system
 * the firmware cannot write (exFAT, ext4, NTFS; docs/efi-loader.md): the
 * loader writes through the host disk, so it needs written blocks, not
 * holes or preallocated ones. Every hole and unwritten (preallocated)
 * range of the file is written with zeros (content unchanged), and a
 * dynamic or differencing image's file gets a reserve (vhd_get_reserve)
 * with at least reserve_bytes free (0: the loader's default rule), written
 * with zeros; an existing reserve that is big enough is kept, a smaller
 * one grows. The record is written last: the file is a valid image at
 * every step. Parents are never written; on a block device there is
 * nothing to do. img must be open read-write; progress counts bytes
 * written. */
struct vhd_boot_prepare_result {
  int uses_reserve;              /* 1: dynamic or differencing (else no reserve) */
  uint64_t reserve_free_before;  /* 0 when there was no reserve */
  uint64_t reserve_free_after;
  uint64_t holes_filled;         /* bytes of holes and unwritten ranges written */
  uint64_t bytes_written;        /* zeros written in all, holes and reserve */
};
/* result may be NULL; else it is filled (sized, above). */
VHD_API int vhd_boot_prepare_sized(vhd_image *img, uint64_t reserve_bytes,
                                   vhd_progress_fn progress, void *opaque,
                                   struct vhd_boot_prepare_result *result,
                                   size_t result_size);
#define vhd_boot_prepare(img, reserve_bytes, progress, opaque, result) \
  vhd_boot_prepare_sized((img), (reserve_bytes), (progress), (opaque), (result), \
                         sizeof(struct vhd_boot_prepare_result))

/* Write the data of child_path's layers into ancestor_path (NULL: its
 * parent), so the ancestor reads as the child did. Crash-safe: every image
 * stays readable and a rerun finishes the job. */
VHD_API int vhd_merge(const char *child_path, const char *ancestor_path,
                      unsigned flags, vhd_progress_fn progress, void *opaque);
/* What vhd_merge(child_path, ancestor_path) would do, decided as it
 * decides: the ancestor it writes into and the images it then removes, the
 * child first (paths as the chain opened them). A merge killed while
 * removing them leaves a record beside the child (child_path + ".merging")
 * until the removal is done; with the child gone the plan is what that
 * record still names (absolute paths), which vhd_merge then finishes. The
 * strings belong to the plan; vhd_merge_plan_removed returns NULL past the
 * last image. */
typedef struct vhd_merge_plan vhd_merge_plan;
VHD_API int vhd_merge_plan_get(const char *child_path, const char *ancestor_path,
                               vhd_merge_plan **plan);
VHD_API const char *vhd_merge_plan_ancestor(const vhd_merge_plan *plan);
VHD_API const char *vhd_merge_plan_removed(const vhd_merge_plan *plan, unsigned i);
VHD_API void vhd_merge_plan_free(vhd_merge_plan *plan);

/* Point a differencing image at a new parent file (locators and identity
 * rewritten). A parent with another identity is refused unless
 * VHD_SET_PARENT_IGNORE_ID. */
#define VHD_SET_PARENT_IGNORE_ID 0x1u
VHD_API int vhd_set_parent(const char *child_path, const char *parent_path,
                           unsigned flags);

/* Give an image a new random unique id in place (Hyper-V's Set-VHD
 * -ResetDiskIdentifier): VHD the footer's unique_id, VHDX the Virtual Disk
 * ID and the data_write_guid. Differencing images whose parent link names
 * the old id break, so when such children lie in the image's directory it
 * is refused (-EBUSY, the message naming them) unless VHD_RESET_ID_FORCE. */
#define VHD_RESET_ID_FORCE 0x1u
VHD_API int vhd_reset_id(const char *path, unsigned flags);

/* The extents of [offset, offset+length) in order, each a maximal run
 * with one state, one layer and (when known) one contiguous place in that
 * layer's file, as `qemu-img map` reports them. Here DATA means "stored in
 * the layer's file" (a fixed image's holes are DATA|ZERO) and ZERO "reads
 * as zeros" (host holes inside stored ranges included). Length 0 maps to
 * the end of the disk. */
struct vhd_extent {
  uint64_t offset;
  uint64_t length;
  unsigned status;       /* VHD_STATUS_*; 0 = unknown (parent not open) */
  int layer;             /* 0 = this image, 1 = parent, ...: the layer that
                            stores the bytes or defines them as zeros (a
                            base image's unallocated blocks are its own);
                            -1 = none (past a shorter parent's end) */
  uint64_t host_offset;  /* where the bytes are in that layer's file, or
                            UINT64_MAX when not one contiguous place */
  unsigned depth;        /* the layer where the lookup stopped (= layer
                            when layer >= 0): qemu-img map's "depth" */
};
/* fn returns 0 to go on; anything else stops the map, which then returns
 * that value when negative and -ECANCELED otherwise. extent is the
 * library's, valid during the call; the caller's sizeof(struct vhd_extent)
 * is passed (sized, above) so that it is never shorter than the caller
 * reads. */
typedef int (*vhd_extent_fn)(void *opaque, const struct vhd_extent *extent);
VHD_API int vhd_map_sized(vhd_image *img, uint64_t offset, uint64_t length,
                          vhd_extent_fn fn, void *opaque, size_t extent_size);
#define vhd_map(img, offset, length, fn, opaque) \
  vhd_map_sized((img), (offset), (length), (fn), (opaque), sizeof(struct vhd_extent))

/* Whether a and b read the same, as `qemu-img compare` judges it: where
 * one disk is longer, its extra part must read as zeros, unless
 * VHD_COMPARE_STRICT, which makes any size difference a difference (sizes
 * in whole 512-byte sectors, as qemu-img counts a raw file's). Ranges
 * block status reports as zeros are not read. progress counts bytes. */
#define VHD_COMPARE_STRICT 0x1u
struct vhd_compare_result {
  int differ;            /* 1: the disks differ, 0: they read the same */
  int size_differs;      /* the virtual sizes differ (a difference only
                            when strict or where the extra part is not zeros) */
  uint64_t offset;       /* start of the first 512-byte sector that differs,
                            UINT64_MAX when none does (equal, or strict and
                            only the sizes differ) */
};
VHD_API int vhd_compare_sized(vhd_image *a, vhd_image *b, unsigned flags,
                              vhd_progress_fn progress, void *opaque,
                              struct vhd_compare_result *result, size_t result_size);
#define vhd_compare(a, b, flags, progress, opaque, result) \
  vhd_compare_sized((a), (b), (flags), (progress), (opaque), (result), \
                    sizeof(struct vhd_compare_result))

/* How large a file vhd_convert(src, ..., p) would make, as `qemu-img
 * measure` tells: fully_allocated with every block present, required for
 * src's current data (every output block that src's block status says
 * holds data counted whole, so an upper bound where that data reads as
 * zeros; with src NULL, an empty image of p->size). Exact for the layout
 * this library writes: the image is made by the driver's own create in
 * memory that holds only metadata. Fixed and raw: both are the file's
 * length (a raw file's holes are not subtracted, as qemu-img does not).
 * p->size 0 is src's size. */
struct vhd_measure_result {
  uint64_t required;
  uint64_t fully_allocated;
};
VHD_API int vhd_measure_sized(vhd_image *src, const struct vhd_create_params *p,
                              struct vhd_measure_result *result, size_t result_size);
#define vhd_measure(src, p, result) \
  vhd_measure_sized((src), (p), (result), sizeof(struct vhd_measure_result))

/* Figures about the layout of one image, for `vhdtool info`. */
struct vhd_layout {
  uint64_t min_size;           /* smallest size a shrink reaches keeping data */
  uint64_t data_blocks;        /* blocks allocated in this layer */
  uint64_t fragmented_blocks;  /* allocated blocks not right after the
                                  previous block in virtual order */
  unsigned fragmentation_pct;  /* fragmented_blocks * 100 / data_blocks */
};
VHD_API int vhd_get_layout_sized(vhd_image *img, struct vhd_layout *layout,
                                 size_t layout_size);
#define vhd_get_layout(img, layout) \
  vhd_get_layout_sized((img), (layout), sizeof(struct vhd_layout))
/* Bytes img's own file occupies on the host file system, holes excluded
 * (st_blocks, as `du` counts them); -ENOTSUP (no message) when there is no
 * such figure: a block device, or a backend that cannot tell. */
VHD_API int vhd_get_host_bytes(vhd_image *img, uint64_t *bytes);

/* Platform rules: checked on an image, or met by the parameters of a new
 * one (vhd_profile_apply adjusts p for a copy of an image of src_size). */
enum vhd_profile {
  VHD_PROFILE_AZURE = 1,       /* fixed VHD, whole MiB, size limits */
  VHD_PROFILE_HYPERV = 2,      /* alignment, block sizes */
  VHD_PROFILE_VIRTUALPC = 3,   /* VHD with a CHS-exact size */
};
/* "azure", "hyperv", "virtualpc"; an unknown or NULL name is -EINVAL, an
 * unknown profile's name NULL. The strings are static. */
VHD_API int vhd_profile_from_name(const char *name, enum vhd_profile *out);
VHD_API const char *vhd_profile_name(enum vhd_profile profile);
/* Each broken rule goes to report (named; may be NULL); *violations counts
 * them. vhd_profile_apply changes only members within p->struct_size. */
VHD_API int vhd_profile_check(vhd_image *img, enum vhd_profile profile,
                              vhd_check_report_fn report, void *opaque,
                              unsigned *violations);
VHD_API int vhd_profile_apply(enum vhd_profile profile, uint64_t src_size,
                              struct vhd_create_params *p);

#ifdef __cplusplus
}
#endif

#endif /* LIBVHD_VHD_H */
