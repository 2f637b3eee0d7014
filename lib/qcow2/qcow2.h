/* SPDX-License-Identifier: BSD-3-Clause */
/* qcow2 (QEMU copy-on-write, versions 2 and 3), read only. Layout facts:
 * shared/reference/vmdk-vdi-qcow2.md section 4 (from QEMU's specification,
 * docs/interop/qcow2.rst). Hosted only: compressed clusters need zlib. */
#ifndef LIBVHD_QCOW2_H
#define LIBVHD_QCOW2_H

#include "driver.h"

#define QCOW2_BACKING_NAME_MAX 1023u   /* the specification's limit */

struct qcow2 {
  unsigned version;          /* 2 or 3 */
  unsigned cluster_bits;     /* 9..21 */
  uint64_t cluster_size;
  uint64_t l2_entries;       /* entries per L2 table */
  uint64_t *l1;              /* the entries the virtual size needs */
  uint64_t l1_count;
  uint64_t l1_offset;
  uint64_t file_size;
  unsigned csize_shift;      /* compressed descriptors: where the sector count starts */
  uint64_t csize_mask;       /* ... its width */
  char *backing;             /* NUL-terminated, NULL without a backing file */
  char backing_format[16];   /* from the header extension, "" when absent */
  uint8_t fingerprint[16];   /* of the header cluster, for loop detection */
};

/* What a run of guest clusters is in this layer. */
enum qcow2_kind {
  QCOW2_ABSENT,       /* the backing file's, or zeros */
  QCOW2_ZERO,         /* zero flag: zeros, the backing file masked */
  QCOW2_DATA,         /* at host, contiguously */
  QCOW2_COMPRESSED,   /* one cluster, deflated at host (csize bytes at most) */
};

struct qcow2_run {
  enum qcow2_kind kind;
  uint64_t host;      /* DATA: file offset of the guest offset; COMPRESSED: of the stream */
  uint64_t csize;     /* COMPRESSED: upper bound of the stream's length */
  uint64_t len;       /* bytes from the guest offset, within the request */
};

/* The run at guest offset off (sector aligned, inside the disk), at most
 * len bytes, all of one kind. */
int qcow2_lookup(struct vhd_image *img, uint64_t off, uint64_t len, struct qcow2_run *run);

int qcow2_read(struct vhd_image *img, void *buf, size_t len, uint64_t off);
int qcow2_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                       enum layer_state *state, uint64_t *run);
/* Clusters this layer stores (data or compressed), for info. */
uint64_t qcow2_allocated_clusters(struct vhd_image *img);
int qcow2_check(struct vhd_image *img, struct vhd_diag *d);
int qcow2_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                      uint64_t *run);

#endif
