/* SPDX-License-Identifier: BSD-3-Clause */
/* Path strings for parent locators. Pure string work, no file system. */
#ifndef LIBVHD_PATH_H
#define LIBVHD_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Directory part of path ("." when there is none), allocated. */
char *path_dirname(const char *path);
/* Last component, pointing into path. */
const char *path_basename(const char *path);
/* dir + "/" + rel, or rel itself when it is absolute; allocated. */
char *path_join(const char *dir, const char *rel);
bool path_is_absolute(const char *path);

/* A stored locator path made usable here. Windows forms (url = false):
 * '\' -> '/', leading ".\" dropped, and an absolute Windows path (drive
 * letter, "\\?\" or UNC) reduced to its file name, since it names a place
 * on another machine; one leading separator without a drive (what Unix
 * tools store) stays a host path. MacX URLs (url = true): "file://" and
 * "localhost" dropped, %XX decoded. "" when nothing usable is left.
 * Allocated; NULL on allocation failure. */
char *path_from_stored(const char *stored, bool url);

/* path with "." parts, repeated '/' and ".." (against the parts before
 * it) taken out, as text only: no symbolic link is followed. A relative
 * path that climbs above its start keeps its leading "..". "." when
 * nothing is left. Allocated; NULL on allocation failure. */
char *path_normalize(const char *path);

/* True when the normalised path names something in the normalised
 * directory root or below it, never root itself ("." takes every relative
 * path that does not climb out). */
bool path_within(const char *root, const char *path);

/* Path of target relative to the directory base_dir, both absolute and
 * normalised ('/' separators, no "." or ".." parts); allocated. */
char *path_relative(const char *base_dir, const char *target);

/* Hosted only (lib/ops/layers.c): a and b name the same file (device and
 * inode: links count); false when either cannot be looked at. */
bool path_same_file(const char *a, const char *b);

#endif
