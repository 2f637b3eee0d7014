/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdboot-attach: what is to be attached, and the pieces that attach it.
 * The program runs in the initramfs of a system booted by vhdboot.efi (or
 * told on the kernel command line where its image is) and exposes the
 * virtual disk as /dev/disk/by-id/vhdboot-root before the root is mounted.
 * See docs/linux-boot.md. */
#ifndef VHDBOOT_ATTACH_H
#define VHDBOOT_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum attach_mode { ATTACH_RO = 0, ATTACH_COW = 1, ATTACH_RW = 2 };

/* Where the host partition is looked for. */
enum host_key { HOST_BY_PARTUUID, HOST_BY_MBR, HOST_BY_FSUUID };

struct file_extent {
  uint64_t file_offset;
  uint64_t disk_offset;   /* bytes from the start of the host disk, or
                             EXTENT_NOT_ON_DISK */
  uint64_t length;
};
/* The record's disk offset of a range with no written blocks on the disk
 * (a hole or an unwritten extent, docs/efi-handoff.md): it reads as zeros
 * through the host file system, and no table may point at it. */
#define EXTENT_NOT_ON_DISK UINT64_MAX

/* One file of the image (the top image first), as the hand-off record
 * describes it. */
struct layer {
  char path[1024];        /* on the host file system, '/' separators */
  uint8_t format, type;   /* enum vhd_format, enum vhd_disk_type */
  uint64_t logical_size, physical_size, virtual_size;
  bool in_memory;         /* the loader read it into memory: no extents */
  uint32_t n_extents;
  struct file_extent *extents;
};

struct request {
  bool from_record;       /* a hand-off record was found */
  enum attach_mode mode;
  uint32_t block_size;    /* the virtual disk's logical sector size; 0 unknown */
  uint64_t virtual_size;  /* 0 unknown */

  enum host_key host_key;
  uint8_t part_guid[16];  /* HOST_BY_PARTUUID: as stored in the GPT */
  uint32_t mbr_signature; /* HOST_BY_MBR */
  uint32_t part_number;   /* HOST_BY_MBR; checked when non-zero */
  char fs_uuid[64];       /* HOST_BY_FSUUID: as blkid prints it */
  bool check_geometry;    /* compare the partition's start and size */
  uint64_t part_start, part_size;
  uint8_t fs;             /* record's fs byte: 12/16/32 FAT, 64 exFAT, 2/3/4
                             ext2/3/4, 7 NTFS, 0 unknown */
  char fstype[16];        /* vhdboot.fstype=, empty: from fs or tried in order */

  char image[1024];       /* path of the top image on the host file system */
  unsigned n_layers;
  struct layer *layers;   /* from the record; NULL without one */
};

/* The attached device, for the symbolic links. */
struct attached {
  char disk[64];          /* e.g. "nbd0" or "dm-0" (a name under /dev) */
  unsigned n_parts;
  unsigned part_number[128];
  char part_dev[128][64]; /* e.g. "nbd0p2" or "dm-1" */
  uint8_t part_guid[128][16];
};

/* Every failure goes through here: one line on stderr (the console in the
 * initramfs), "vhdboot-attach: " + the message. Returns -1. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern bool verbose;

/* handoff_read.c: the record from efivarfs. 1 read, 0 no record, -1 bad. */
int handoff_read(const char *efivars_dir, struct request *rq);
void request_free(struct request *rq);

/* cmdline.c: vhdboot.* settings of the kernel command line. Returns the
 * number of settings applied or -1 for a malformed one. */
int cmdline_apply(const char *cmdline, struct request *rq);
const char *mode_name(enum attach_mode mode);

/* guid.c */
void guid_to_text(const uint8_t g[16], char out[37]);
int guid_from_text(const char *s, uint8_t g[16]);

/* ptable.c: a disk's partition table (GPT or MBR). */
struct part_entry {
  uint32_t number;
  uint64_t start, size;   /* bytes */
  uint8_t guid[16];       /* GPT unique partition GUID; zeros for MBR */
};
struct ptable {
  int kind;               /* 0 none, 1 MBR, 2 GPT */
  uint32_t mbr_signature;
  uint32_t sector;
  unsigned n;
  struct part_entry e[128];
};
int ptable_read(int fd, uint32_t sector, struct ptable *pt);

/* hostpart.c: the host partition. Fills dev ("/dev/vda1") and disk
 * ("/dev/vda"). Waits up to timeout_ms for it to appear. */
int host_find(const struct request *rq, int timeout_ms, char *dev, size_t devlen,
              char *disk, size_t disklen);

/* hostfs.c: mount the host partition at dir; the mount type the request
 * names (the command line, else the record's fs byte), NULL: guessed. */
int host_mount(const struct request *rq, const char *dev, const char *dir);
const char *host_fs_named(const struct request *rq);

/* extents.c: where a file's bytes are on its disk. */
int file_extents(int fd, uint64_t part_start, struct file_extent **out, uint32_t *count);
int extents_verify(int file_fd, int disk_fd, const struct file_extent *e, uint32_t count,
                   uint64_t file_size, const char *path);

/* spawn.c: run a program and wait; argv[0] is the name the process gets,
 * prog the file run. stdin_text (or NULL) is written to its input. */
int spawn_wait(const char *prog, char *const argv[], const char *stdin_text);
const char *find_program(const char *name);

/* dm_attach.c / nbd_attach.c */
int dm_attach(const struct request *rq, const char *host_disk, const char *host_part,
              const char *host_dir, const char *file, struct attached *out);
int nbd_attach(const struct request *rq, const char *file, const char *run_dir,
               const char *plugin, struct attached *out);

/* detach.c: --detach, the shutdown side. An rw boot served by nbdkit
 * leaves the image's host path in run_dir/RUN_PREPARE: the detach gives it
 * written room for the next firmware boot (vhd_boot_prepare). */
#define RUN_PREPARE "prepare"
int detach(const char *run_dir);

/* links.c: /dev/disk/by-id/vhdboot-root[-partN], /dev/disk/by-partuuid/. */
int links_make(const struct attached *a);

#endif
