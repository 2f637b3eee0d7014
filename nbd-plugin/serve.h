/* SPDX-License-Identifier: BSD-3-Clause */
/* What nbdkit-vhd-plugin and nbdkit-vhd-filter share: the policy
 * parameters, the one vhd_image every connection serves (opened read-only
 * first, read-write for the first writable connection), and the NBD
 * requests over it. The front ends differ only in where the container
 * file comes from (a path, or the plugin below the filter) and in how an
 * error reaches nbdkit (a plugin's errno, a filter's *err): every data
 * function here returns 0 or -errno, the message already given to
 * nbdkit_error. */
#ifndef VHD_NBD_SERVE_H
#define VHD_NBD_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "vhd.h"

struct nbdkit_extents;

/* Where parents may come from. Served images are often someone else's
 * upload, whose locators may name any host file: by default only the
 * image's own directory and below, never a raw file. */
enum serve_parents { SERVE_PARENTS_NONE, SERVE_PARENTS_BESIDE, SERVE_PARENTS_ANY };

struct serve_policy {
  enum vhd_format format;
  bool discard;
  enum serve_parents parents;
  bool raw_parent;
};
extern struct serve_policy serve_policy;

/* Takes the policy parameters (format, parents, raw-parent, discard):
 * 1 when key is one of them, 0 when not, -1 on a bad value (reported). */
int serve_config(const char *key, const char *value);
#define SERVE_CONFIG_HELP \
  "format=auto|raw|vhd|vhdx|qcow2|vmdk|vdi  Take the image as this format (default: probe).\n" \
  "discard=true|false  Let trim and zero free blocks (default: true).\n" \
  "parents=none|beside|any  Where parents may be: none, the image's directory\n" \
  "                    and below (default), or wherever the locators say.\n" \
  "raw-parent=true|false  Let a raw file be a parent (default: false)."

/* vhd_open_params for the policy; flags: VHD_OPEN_RDONLY or RDWR. */
void serve_open_params(unsigned flags, struct vhd_open_params *p);

/* How the front end opens its image (flags: VHD_OPEN_RDONLY or RDWR), and
 * the name its messages use. */
typedef int serve_open_fn(unsigned flags, vhd_image **out);
void serve_set_source(serve_open_fn *open, const char *name);

/* nbdkit_error with the library's last message; returns r. */
int serve_library_error(int r);

/* Lifecycle: validate (before the fork: open, describe, close), start
 * (after it: the image kept), stop. */
int serve_validate(void);
int serve_start(void);
void serve_stop(void);

struct serve_handle {
  vhd_image *img;
  bool writable;
};
/* A connection: NULL (reported) when refused. writable_below: whether
 * the layer the image lives on can be written at all. */
struct serve_handle *serve_connect(bool readonly, bool writable_below);
void serve_disconnect(struct serve_handle *h);

int64_t serve_get_size(void);
void serve_block_size(uint32_t *minimum, uint32_t *preferred, uint32_t *maximum);
bool serve_can_trim(const struct serve_handle *h);

int serve_pread(struct serve_handle *h, void *buf, uint32_t count, uint64_t offset);
int serve_pwrite(struct serve_handle *h, const void *buf, uint32_t count, uint64_t offset,
                 uint32_t flags);
int serve_flush(struct serve_handle *h);
int serve_trim(struct serve_handle *h, uint32_t count, uint64_t offset, uint32_t flags);
int serve_zero(struct serve_handle *h, uint32_t count, uint64_t offset, uint32_t flags);
int serve_extents(struct serve_handle *h, uint32_t count, uint64_t offset, uint32_t flags,
                  struct nbdkit_extents *extents);
int serve_cache(struct serve_handle *h, uint32_t count, uint64_t offset);

void serve_load(void);

#endif
