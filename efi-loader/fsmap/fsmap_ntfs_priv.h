/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by the NTFS module's files: fsmap_ntfs.c (mount, map),
 * fsmap_ntfs_attr.c (MFT records, attributes, run lists) and
 * fsmap_ntfs_index.c (directory indexes). Layouts follow the on-disk NTFS
 * format as documented by the Linux ntfs3 and ntfs-3g projects. */
#ifndef VHDBOOT_FSMAP_NTFS_PRIV_H
#define VHDBOOT_FSMAP_NTFS_PRIV_H

#include "fsmap_priv.h"

/* Attribute types used here. */
#define NTFS_AT_ATTRIBUTE_LIST 0x20u
#define NTFS_AT_DATA 0x80u
#define NTFS_AT_INDEX_ROOT 0x90u
#define NTFS_AT_INDEX_ALLOCATION 0xa0u
#define NTFS_AT_BITMAP 0xb0u
#define NTFS_AT_REPARSE_POINT 0xc0u
#define NTFS_AT_END 0xffffffffu

/* Attribute header flags. */
#define NTFS_ATTR_COMPRESSED 0x00ffu
#define NTFS_ATTR_ENCRYPTED 0x4000u
#define NTFS_ATTR_SPARSE 0x8000u

/* MFT record header flags. */
#define NTFS_RECORD_IN_USE 0x0001u
#define NTFS_RECORD_DIRECTORY 0x0002u

/* File references: record number in the low 48 bits, sequence above. */
#define NTFS_REF_RECORD(ref) ((ref) & 0xffffffffffffull)
#define NTFS_REF_SEQUENCE(ref) ((uint16_t)((ref) >> 48))

/* One run of a non-resident attribute: count clusters from vcn on, at lcn
 * on the volume, or a hole (sparse: no clusters). */
struct ntfs_run {
  uint64_t vcn;
  uint64_t lcn;
  uint64_t count;
  bool hole;
};

/* The runs of every piece of one attribute, in VCN order with no gaps:
 * they cover [0, next_vcn). */
struct ntfs_runlist {
  struct ntfs_run *v;
  size_t count, cap;
  uint64_t next_vcn;
  uint64_t data_clusters;   /* clusters of the non-hole runs */
};

struct ntfs_state {
  uint64_t clusters;        /* clusters of the volume */
  uint32_t record_size;     /* bytes of an MFT record */
  uint64_t mft_records;     /* records the $MFT's data holds */
  struct ntfs_runlist mft;  /* where those records are */
};

/* One attribute record, pointers into the MFT record that holds it. */
struct ntfs_attr {
  uint32_t type;
  uint32_t length;
  bool nonresident;
  uint16_t flags;
  uint16_t instance;
  const uint8_t *name;      /* UTF-16LE, name_len units */
  uint8_t name_len;
  /* resident */
  const uint8_t *value;
  uint32_t value_len;
  /* non-resident; the sizes hold only in the piece with lowest_vcn 0 */
  uint64_t lowest_vcn;
  uint64_t end_vcn;         /* highest VCN + 1 */
  const uint8_t *runs;
  uint32_t runs_len;
  uint64_t alloc_size, data_size, init_size;
  uint64_t record;          /* MFT record that holds it */
};

/* Check the magic and apply the update sequence array to a FILE or INDX
 * record of size bytes; what and number name it in messages. */
int ntfs_fixup(struct fsmap_volume *vol, uint8_t *buf, uint32_t size, const char *magic,
               const char *what, uint64_t number);

/* Read, fix up and check MFT record n (in use, header fields in bounds)
 * into buf (record_size bytes). */
int ntfs_read_record(struct fsmap_volume *vol, uint64_t n, uint8_t *buf);

/* The attribute records of one MFT record in order: 1 with a filled in,
 * 0 at the end marker, <0 error. pos starts at 0. */
int ntfs_attr_next(struct fsmap_volume *vol, const uint8_t *rec, uint64_t n, uint32_t *pos,
                   struct ntfs_attr *a);

/* Append the runs of one non-resident attribute piece; the piece must
 * start where the list ends. */
int ntfs_runs_decode(struct fsmap_volume *vol, const struct ntfs_attr *a,
                     struct ntfs_runlist *rl);
void ntfs_runs_free(struct ntfs_runlist *rl);

/* Read len bytes at byte off of a non-resident stream (no holes allowed);
 * what names it in messages. */
int ntfs_stream_read(struct fsmap_volume *vol, const struct ntfs_runlist *rl, uint64_t off,
                     void *buf, size_t len, const char *what);

/* Call fn for each attribute record of type and name (name_len UTF-16
 * units; 0 = unnamed) of the file whose base record is n, following its
 * $ATTRIBUTE_LIST into extension records. Returns the number of calls or
 * <0 (an error of fn stops the walk and is returned). */
typedef int (*ntfs_attr_fn)(struct fsmap_volume *vol, const struct ntfs_attr *a, void *arg);
int ntfs_for_each_attr(struct fsmap_volume *vol, uint64_t n, uint32_t type,
                       const uint16_t *name, uint8_t name_len, ntfs_attr_fn fn, void *arg);

/* -ENOTSUP with a message when file n is a reparse point (its data or
 * children are elsewhere), else 0 or a read error. */
int ntfs_refuse_reparse(struct fsmap_volume *vol, uint64_t n);

/* One attribute (type/name) of a file, all its pieces gathered: the runs
 * when it is non-resident, a copy of the value when it is resident. The
 * sizes are those of the first piece (resident: the value length). */
struct ntfs_stream {
  bool found;
  bool resident;
  uint16_t flags;           /* attribute flags, ORed over the pieces */
  uint64_t alloc_size, data_size, init_size;
  struct ntfs_runlist runs;
  uint8_t *value;
};
/* 0 (s->found says whether the file has it) or <0. Free with
 * ntfs_stream_free even after an error. */
int ntfs_stream_load(struct fsmap_volume *vol, uint64_t n, uint32_t type,
                     const uint16_t *name, uint8_t name_len, struct ntfs_stream *s);
void ntfs_stream_free(struct ntfs_stream *s);

#endif
