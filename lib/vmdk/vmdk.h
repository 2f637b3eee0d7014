/* VMDK hosted sparse extents (monolithicSparse, streamOptimized), read
 * only. Layout facts: shared/reference/vmdk-vdi-qcow2.md section 2 (from
 * VMware's Virtual Disk Format 1.1 and 5.0 notes). Hosted only: stream
 * grains need zlib. Descriptor files (flat, split) are not read yet. */
#ifndef LIBVHD_VMDK_H
#define LIBVHD_VMDK_H

#include "driver.h"

#define VMDK_SECTOR 512u
#define VMDK_NAME_MAX 1024u

struct vmdk {
  unsigned version;
  uint32_t flags;
  uint64_t grain_sectors;
  uint64_t grain_bytes;
  uint32_t gtes_per_gt;
  uint32_t *gd;              /* GT sector of each GD entry (host order) */
  uint64_t gd_count;
  uint64_t file_size;
  bool compressed;           /* grains are markers + zlib streams */
  bool zeroed_grains;        /* GTE 1 means zeros */
  uint32_t cid, parent_cid;
  char *parent_hint;         /* NULL without a parent */
  uint8_t fingerprint[16];
};

int vmdk_read(struct vhd_image *img, void *buf, size_t len, uint64_t off);
int vmdk_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                      enum layer_state *state, uint64_t *run);
int vmdk_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                     uint64_t *run);

#endif
