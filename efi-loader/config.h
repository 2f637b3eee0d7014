/* SPDX-License-Identifier: BSD-3-Clause */
/* The loader's configuration: key=value settings from its load options
 * (a boot entry's optional data or shell arguments) or, when those name
 * no image, from vhdboot.cfg in the loader's own directory.
 *
 *   image=\path\disk.vhdx      the image file on the host partition (required)
 *   path=\EFI\BOOT\BOOTX64.EFI the program to start inside the virtual disk
 *   mode=ro|cow|rw             default: rw for fixed images, cow otherwise
 *   partition=N|GUID           host partition: N on the loader's disk, or
 *                              by GPT partition GUID (default: the loader's)
 *   reserve=SIZE|auto          rw growth room for dynamic/differencing
 *                              images (bytes, K/M/G suffixes; default auto:
 *                              enough for the whole virtual disk)
 *   fallback=none|cow          rw of a dynamic/differencing image whose
 *                              file has no prepared room (a host file
 *                              system the loader cannot grow files on):
 *                              fail (none, the default) or boot this
 *                              once in cow mode, saying so
 *   args=TEXT                  load options passed to the started program
 *   backend=auto|map|ram       how to read the image: through the host
 *                              disk's extents (map), whole into memory
 *                              (ram), or map when possible (auto)
 *
 * In the file: one setting per line, '#' starts a comment line, blank
 * lines, CR LF and a UTF-8 BOM are fine. In load options: settings
 * separated by spaces; a value with spaces goes in double quotes; words
 * without '=' (the program name the shell passes) are ignored. Paths take
 * '\' or '/'; a relative image path is relative to the loader's directory. */
#ifndef VHDBOOT_CONFIG_H
#define VHDBOOT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum boot_mode { MODE_DEFAULT = 0, MODE_RO, MODE_COW, MODE_RW };
enum read_backend { BACKEND_AUTO = 0, BACKEND_MAP, BACKEND_RAM };

struct config {
  char image[512];
  char path[512];
  char partition[64];
  char args[512];
  enum boot_mode mode;
  enum read_backend backend;
  bool reserve_auto;
  uint64_t reserve;
  bool fallback_cow;
  char source[96];     /* where the settings came from, for messages */
};

/* Parse text (len bytes, any encoding noise rejected) into c, which must
 * have been config_init'ed. as_options: load options syntax. Errors name
 * source and the offending setting. */
void config_init(struct config *c);
int config_parse(struct config *c, const char *text, size_t len, bool as_options,
                 const char *source);
/* After parsing: image present, defaults applied. */
int config_finish(struct config *c, const char *loader_dir);

const char *config_mode_name(enum boot_mode m);

#endif
