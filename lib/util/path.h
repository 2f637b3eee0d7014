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

/* A stored Windows-style path made usable here: '\' -> '/', a leading
 * ".\" dropped, "\\?\" and a drive letter ("C:") dropped; "file://" and
 * "localhost" dropped and %XX decoded for MacX URLs (url = true).
 * Allocated; NULL on allocation failure. */
char *path_from_stored(const char *stored, bool url);

/* Path of target relative to the directory base_dir, both absolute and
 * normalised ('/' separators, no "." or ".." parts); allocated. */
char *path_relative(const char *base_dir, const char *target);

#endif
