/* SPDX-License-Identifier: BSD-3-Clause */
/* Path strings for parent locators (no file system access here). */
#include "path.h"
#include "platform.h"
#include "strfmt.h"

bool path_is_absolute(const char *path) { return path[0] == '/'; }

const char *path_basename(const char *path)
{
  const char *slash = NULL;
  for (const char *p = path; *p; p++)
    if (*p == '/')
      slash = p;
  return slash ? slash + 1 : path;
}

char *path_dirname(const char *path)
{
  const char *base = path_basename(path);
  if (base == path)
    return vhd_strdup(".");
  size_t n = (size_t)(base - path);
  while (n > 1 && path[n - 1] == '/')
    n--;
  return vhd_strndup(path, n);
}

char *path_join(const char *dir, const char *rel)
{
  if (path_is_absolute(rel) || !dir || !*dir)
    return vhd_strdup(rel);
  size_t a = strlen(dir), b = strlen(rel);
  char *r = vhd_malloc(a + b + 2);
  if (!r)
    return NULL;
  memcpy(r, dir, a);
  size_t o = a;
  if (a && dir[a - 1] != '/')
    r[o++] = '/';
  memcpy(r + o, rel, b + 1);
  return r;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char *path_from_stored(const char *stored, bool url)
{
  const char *s = stored;
  if (url) {
    if (strncmp(s, "file://", 7) == 0)
      s += 7;
    if (strncmp(s, "localhost/", 10) == 0)
      s += 9;
  }
  size_t n = strlen(s);
  char *r = vhd_malloc(n + 1);
  if (!r)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (url && c == '%' && i + 2 < n + 0 + 1 && hexval(s[i + 1]) >= 0 &&
        hexval(s[i + 2]) >= 0) {
      c = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
      i += 2;
    }
    r[o++] = c == '\\' ? '/' : c;
  }
  r[o] = '\0';
  if (url)
    return r;   /* a Mac path: absolute or relative, it means the same here */
  /* Windows absolute forms ("C:\x", "\\?\C:\x", "\\server\share\x") name
   * places on another machine, not host paths: read as host paths they
   * would reach /etc or /home. Only their file name is kept, to be looked
   * for beside the child. A path with one leading separator and no drive
   * is what Unix tools (libvhd, blktap) store for a host path, and is one,
   * like a MacX path. */
  bool windows_absolute = (r[0] == '/' && r[1] == '/') ||
      (((r[0] >= 'A' && r[0] <= 'Z') || (r[0] >= 'a' && r[0] <= 'z')) && r[1] == ':');
  char *p = windows_absolute ? (char *)path_basename(r) : r;
  while (p[0] == '.' && p[1] == '/')
    p += 2;
  if (windows_absolute && (strcmp(p, ".") == 0 || strcmp(p, "..") == 0))
    p += strlen(p);
  if (p != r)
    memmove(r, p, strlen(p) + 1);
  return r;
}

char *path_normalize(const char *path)
{
  size_t n = strlen(path);
  char *r = vhd_malloc(n + 2);
  if (!r)
    return NULL;
  bool absolute = path[0] == '/';
  size_t o = 0, floor = 0;   /* r[0..floor) is never taken back by ".." */
  if (absolute)
    r[o++] = '/', floor = 1;
  const char *p = path;
  while (*p) {
    while (*p == '/')
      p++;
    const char *start = p;
    while (*p && *p != '/')
      p++;
    size_t len = (size_t)(p - start);
    if (len == 0 || (len == 1 && start[0] == '.'))
      continue;
    if (len == 2 && start[0] == '.' && start[1] == '.') {
      if (o > floor) {
        while (o > floor && r[o - 1] != '/')
          o--;
        if (o > floor)
          o--;          /* the separator before the dropped part */
        continue;
      }
      if (absolute)
        continue;       /* "/.." is "/" */
      /* A relative path that climbs above its start keeps the "..". */
      if (o > 0)
        r[o++] = '/';
      r[o++] = '.';
      r[o++] = '.';
      floor = o;
      continue;
    }
    if (o > 0 && r[o - 1] != '/')
      r[o++] = '/';
    memcpy(r + o, start, len);
    o += len;
  }
  if (o == 0)
    r[o++] = '.';
  r[o] = '\0';
  return r;
}

bool path_within(const char *root, const char *path)
{
  if (strcmp(root, ".") == 0)
    return path[0] != '/' && strcmp(path, ".") != 0 && strcmp(path, "..") != 0 &&
           strncmp(path, "../", 3) != 0;
  size_t n = strlen(root);
  if (n == 1 && root[0] == '/')
    return path[0] == '/' && path[1] != '\0';
  return strncmp(path, root, n) == 0 && path[n] == '/' && path[n + 1] != '\0';
}

char *path_relative(const char *base_dir, const char *target)
{
  /* Find the longest common prefix made of whole components. */
  size_t common = 0, i = 0;
  while (base_dir[i] && target[i] && base_dir[i] == target[i]) {
    if (base_dir[i] == '/')
      common = i + 1;
    i++;
  }
  if (!base_dir[i] && (target[i] == '/' || !target[i]))
    common = i + (target[i] == '/');
  else if (!base_dir[i] && i > 0 && base_dir[i - 1] == '/')
    common = i;
  /* Count the components of base_dir left after the common part. */
  size_t ups = 0;
  /* common may stand one past base_dir's end (target = base_dir + "/..."). */
  for (const char *p = base_dir + (common < i ? common : i); *p;) {
    ups++;
    while (*p && *p != '/')
      p++;
    while (*p == '/')
      p++;
  }
  const char *rest = target + common;
  size_t len = ups * 3 + strlen(rest) + 3;
  char *r = vhd_malloc(len);
  if (!r)
    return NULL;
  size_t o = 0;
  if (ups == 0) {
    r[o++] = '.';
    r[o++] = '/';
  }
  for (size_t u = 0; u < ups; u++) {
    memcpy(r + o, "../", 3);
    o += 3;
  }
  memcpy(r + o, rest, strlen(rest) + 1);
  return r;
}
