/* SPDX-License-Identifier: BSD-3-Clause */
/* A merge's record of what it removes, kept beside the child while the
 * merged images go (merge.c). Removing several files is not one atomic
 * step: once the child's name is gone nothing else names the
 * intermediates, so a kill between two unlink() calls would leave an
 * image that nothing refers to and no rerun could find. The record is
 * durable before the first unlink and goes last, so at every moment either
 * the child or the record names everything still to remove. */
#ifndef LIBVHD_OPS_MERGE_JOURNAL_H
#define LIBVHD_OPS_MERGE_JOURNAL_H

#include "image.h"

struct merge_record {
  char *ancestor;                          /* absolute */
  char *removed[VHD_MAX_CHAIN_DEPTH];      /* absolute, the child first */
  unsigned count;
  bool renew;                              /* the ancestor gets a new data id */
};
void merge_record_free(struct merge_record *rec);

/* Where the record of a merge of child_path lies (allocated; NULL when out
 * of memory). */
char *merge_journal_path(const char *child_path);
/* Write rec durably (file and directory synced). */
int merge_journal_write(const char *jpath, const struct merge_record *rec);
/* Read a record; -ENOENT with no message when there is none. */
int merge_journal_read(const char *jpath, struct merge_record *rec);
/* Remove the record durably. */
int merge_journal_remove(const char *jpath);
/* Make the removal (or creation) of path durable: fsync its directory. */
int merge_sync_dir_of(const char *path);

#endif
