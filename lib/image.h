/* SPDX-License-Identifier: BSD-3-Clause */
/* The image handle and the chain below it. */
#ifndef LIBVHD_IMAGE_H
#define LIBVHD_IMAGE_H

#include "io.h"
#include "platform.h"
#include "vhd.h"

/* The sector sizes an image may have (VHDX logical and physical; a VHD's
 * is always 512), and the one rule that checks a size against them. */
#define SECTOR_SIZE_512 512u
#define SECTOR_SIZE_4K 4096u
static inline bool sector_size_valid(uint32_t n)
{
  return n == SECTOR_SIZE_512 || n == SECTOR_SIZE_4K;
}

/* Deepest differencing chain accepted (the top image is depth 0). */
#define VHD_MAX_CHAIN_DEPTH 32

struct vhd_driver;
struct vhd_diag;

struct vhd_image {
  const struct vhd_driver *drv;
  void *priv;                 /* the driver's state */
  vhd_io *io;
  const char *path;           /* = io->name */
  unsigned flags;             /* VHD_OPEN_* */
  bool writable;

  /* Set by the driver's open. */
  enum vhd_disk_type type;
  uint64_t virtual_size;
  uint32_t sector_size;       /* logical sector size */
  unsigned warnings;

  /* Set by the chain layer. */
  struct parent_roots *roots; /* where parents may be (chain.c); owned,
                                 NULL = anywhere the locators say */
  struct vhd_image *parent;   /* owned */
  char *parent_path;          /* resolved, owned */
  unsigned depth;             /* layers below this one */

  vhd_rwlock lock;            /* taken only through image_lock */
  struct trim_log *trims;     /* partial trims of this open (trims.h) */
};

/* Read [off, off+len) of the layers below img into buf: from the parent
 * (clipped to its size, zeros past it), zeros when there is none, -ENXIO
 * when the image was opened without its parent. For drivers. */
int image_read_parent(struct vhd_image *img, void *buf, size_t len, uint64_t off);

/* Take img's lock, shared or exclusive: 0, or -EDEADLK with a message
 * when this thread holds it already (a callback that called back into the
 * image it was called for: include/vhd.h forbids it), or the lock's error. */
int image_lock(struct vhd_image *img, bool exclusive);
/* Release it; returns r, or the unlock's error when r is 0. */
int image_unlock(struct vhd_image *img, int r);

/* Block status through the chain (vhd_block_status and vhd_map). */
struct image_status {
  unsigned status;   /* VHD_STATUS_* */
  uint64_t run;      /* bytes from the offset that share all of this */
  int layer;         /* depth of the layer holding the bytes (or saying they
                        are zeros), -1 when none does */
  unsigned depth;    /* depth of the layer where the lookup stopped */
  uint64_t host;     /* the bytes' offset in that layer's file, contiguous
                        for run bytes; UINT64_MAX when unknown */
};
/* vhd_map's view: a range with a place in a layer's file is DATA (ZERO too
 * where a host hole backs it), and a base image's unallocated ranges are
 * that image's (layer set). Without it: vhd_block_status's contract. */
#define IMAGE_STATUS_MAP 0x1u
int image_block_status(struct vhd_image *img, uint64_t offset, uint64_t length,
                       unsigned flags, struct image_status *st);

/* vhd_zero's work on a sector-aligned range, for a caller that holds the
 * image's exclusive lock; the range may lie past the virtual size but
 * inside the driver's tables (a resize). */
int image_zero_locked(struct vhd_image *img, uint64_t off, uint64_t len, unsigned flags);
/* A driver's zero callback for a layer whose disk is its file (raw, fixed
 * VHD): with VHD_ZERO_MAY_TRIM the file is punched, else data is needed. */
int image_zero_by_punch(struct vhd_image *img, uint64_t off, uint64_t len, unsigned flags,
                        bool dry, uint64_t *run);

/* Zeros (through the driver, under the image's exclusive lock) over every
 * part of [from, to) that this layer holds or a parent shows through: a
 * resize clears what lies past the old end before the disk grows over it.
 * The range may lie past the virtual size but inside the driver's tables. */
int image_clear_shown(struct vhd_image *img, uint64_t from, uint64_t to);

/* Open io as an image of the given driver (NULL = probe), without parents. */
int image_open_layer(vhd_io *io, const struct vhd_driver *drv, unsigned flags,
                     struct vhd_diag *d, struct vhd_image **out);
void image_free(struct vhd_image *img);

/* The images above the one whose parent is being opened, for loop
 * detection. */
struct chain_trail {
  const struct vhd_image *image;
  const struct chain_trail *below;   /* towards the top of the chain */
};

/* The directories a chain's parents must lie in (vhd_open_params): each
 * normalised (util/path.h); a parent is taken when it lies in any. Paths
 * of the images in a confined chain are absolute where the host has them
 * (lib/ops/open.c makes them so), so that locators resolve against the
 * real directory of their child. */
#define PARENT_MAX_ROOTS 2
struct parent_roots {
  unsigned count;
  char *dir[PARENT_MAX_ROOTS];
};
/* NULL when p asks for no confinement; *out owned by the caller
 * (parent_roots_free). top is the top image's path (beside it). */
int parent_roots_new(const struct vhd_open_params *p, const char *top,
                     struct parent_roots **out);
void parent_roots_free(struct parent_roots *r);
/* A copy of r into *out (NULL for NULL); -ENOMEM without a message. */
int parent_roots_copy(const struct parent_roots *r, struct parent_roots **out);

/* The open that every public entry ends in: io is owned (closed on
 * failure); roots are copied. */
int image_open_chain(vhd_io *io, const struct vhd_open_params *p,
                     const struct parent_roots *roots, vhd_image **out);

/* Hosted (lib/ops/open.c): the file at path opened for the top of a chain
 * with p, and the roots its parents must lie in (*roots NULL: anywhere). */
int open_top_file(const char *path, const struct vhd_open_params *p, unsigned io_flags,
                  vhd_io **io, struct parent_roots **roots);

/* The same layer (chain.c): the identity rule for loops in a chain and for
 * a new parent (set-parent), not the parent link a child stores. */
bool image_same_layer(struct vhd_image *a, struct vhd_image *b);

/* Open the parent chain of img (chain.c), read-only, at most
 * VHD_MAX_CHAIN_DEPTH deep, rejecting loops. */
int chain_open_parents(struct vhd_image *img, const struct chain_trail *trail,
                       unsigned depth);

/* Create an image on io (owned; closed on failure) and open it read-write
 * (create.c). link is NULL unless differencing. out may be NULL. */
struct parent_link;
struct vhd_create_params;
int create_on_io(vhd_io *io, const struct vhd_create_params *p,
                 const struct parent_link *link, vhd_image **out);

#endif
