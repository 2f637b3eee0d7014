/* SPDX-License-Identifier: BSD-3-Clause */
/* The merge record (merge_journal.h): a small text file, one field a line,
 *   libvhd merge record 1
 *   ancestor <TAB> /abs/path
 *   renew <TAB> 0|1
 *   remove <TAB> /abs/path        (the child first, then each intermediate)
 * Text, so that a user who finds one can read what it will do. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "merge_journal.h"
#include "util/path.h"
#include "util/strfmt.h"

#define MAGIC "libvhd merge record 1"
/* More than any record of VHD_MAX_CHAIN_DEPTH paths of PATH_MAX bytes. */
#define RECORD_MAX (VHD_MAX_CHAIN_DEPTH * 4096u + 4096u)

void merge_record_free(struct merge_record *rec)
{
  vhd_free(rec->ancestor);
  for (unsigned i = 0; i < rec->count; i++)
    vhd_free(rec->removed[i]);
  memset(rec, 0, sizeof *rec);
}

/* a + b + c in a new string; NULL when out of memory. */
static char *concat(const char *a, const char *b, const char *c)
{
  size_t len = strlen(a) + strlen(b) + strlen(c) + 1;
  char *s = vhd_malloc(len);
  if (s)
    vhd_snprintf(s, len, "%s%s%s", a, b, c);
  return s;
}

char *merge_journal_path(const char *child_path)
{
  return concat(child_path, ".merging", "");
}

int merge_sync_dir_of(const char *path)
{
  char *dir = path_dirname(path);
  if (!dir)
    return vhd_error(ENOMEM, "%s: out of memory", path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = 0;
  if (fd < 0 || fsync(fd) != 0)
    r = vhd_error(errno, "%s: cannot sync the directory %s: %s", path, dir, strerror(errno));
  if (fd >= 0)
    close(fd);
  vhd_free(dir);
  return r;
}

static int write_all(int fd, const char *buf, size_t len)
{
  while (len) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static int append(char **text, const char *key, const char *value)
{
  if (strchr(value, '\n'))
    return vhd_error(EINVAL, "%s: a path with a newline cannot be recorded for the merge",
                     value);
  char *line = concat(key, "\t", value);
  char *t = line ? concat(*text, line, "\n") : NULL;
  vhd_free(line);
  if (!t)
    return vhd_error(ENOMEM, "%s: out of memory", value);
  vhd_free(*text);
  *text = t;
  return 0;
}

int merge_journal_write(const char *jpath, const struct merge_record *rec)
{
  char *text = vhd_strdup(MAGIC "\n");
  int r = text ? 0 : vhd_error(ENOMEM, "%s: out of memory", jpath);
  if (r == 0)
    r = append(&text, "ancestor", rec->ancestor);
  if (r == 0)
    r = append(&text, "renew", rec->renew ? "1" : "0");
  for (unsigned i = 0; r == 0 && i < rec->count; i++)
    r = append(&text, "remove", rec->removed[i]);
  /* A new name each time, renamed over: a record is whole or absent. */
  char *tmp = r == 0 ? concat(jpath, ".new", "") : NULL;
  if (r == 0 && !tmp)
    r = vhd_error(ENOMEM, "%s: out of memory", jpath);
  int fd = r == 0 ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
  if (r == 0 && fd < 0)
    r = vhd_error(errno, "%s: cannot create the merge record: %s", tmp, strerror(errno));
  if (r == 0 && ((r = write_all(fd, text, strlen(text))) < 0 || fsync(fd) != 0))
    r = vhd_error(r < 0 ? -r : errno, "%s: cannot write the merge record: %s", tmp,
                  strerror(r < 0 ? -r : errno));
  if (fd >= 0)
    close(fd);
  if (r == 0 && rename(tmp, jpath) != 0)
    r = vhd_error(errno, "%s: cannot put the merge record in place: %s", jpath,
                  strerror(errno));
  if (r < 0 && tmp)
    unlink(tmp);
  if (r == 0)
    r = merge_sync_dir_of(jpath);
  vhd_free(tmp);
  vhd_free(text);
  return r;
}

/* One "key<TAB>value" line of the record into rec. */
static int parse_line(const char *jpath, unsigned lineno, char *line,
                      struct merge_record *rec)
{
  char *tab = strchr(line, '\t');
  if (!tab || !tab[1])
    return vhd_error(EINVAL, "%s: line %u: not a 'key<TAB>value' field", jpath, lineno);
  *tab = '\0';
  const char *value = tab + 1;
  if (strcmp(line, "renew") == 0) {
    rec->renew = strcmp(value, "1") == 0;
    return 0;
  }
  bool anc = strcmp(line, "ancestor") == 0;
  if (!anc && strcmp(line, "remove") != 0)
    return vhd_error(EINVAL, "%s: line %u: unknown field '%s'", jpath, lineno, line);
  if (!path_is_absolute(value) || (anc && rec->ancestor) ||
      (!anc && rec->count == VHD_MAX_CHAIN_DEPTH))
    return vhd_error(EINVAL, "%s: line %u: bad '%s' field", jpath, lineno, line);
  char *copy = vhd_strdup(value);
  if (!copy)
    return vhd_error(ENOMEM, "%s: out of memory", jpath);
  if (anc)
    rec->ancestor = copy;
  else
    rec->removed[rec->count++] = copy;
  return 0;
}

int merge_journal_read(const char *jpath, struct merge_record *rec)
{
  memset(rec, 0, sizeof *rec);
  int fd = open(jpath, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && errno == ENOENT)
    return -ENOENT;
  if (fd < 0)
    return vhd_error(errno, "%s: cannot open the merge record: %s", jpath, strerror(errno));
  char *text = vhd_malloc(RECORD_MAX + 1);
  ssize_t n = text ? read(fd, text, RECORD_MAX + 1) : 0;
  int err = errno;
  close(fd);
  int r = 0;
  if (!text)
    r = vhd_error(ENOMEM, "%s: out of memory", jpath);
  else if (n < 0)
    r = vhd_error(err, "%s: cannot read the merge record: %s", jpath, strerror(err));
  else if ((size_t)n > RECORD_MAX)
    r = vhd_error(EINVAL, "%s: the merge record is longer than %u bytes", jpath, RECORD_MAX);
  if (r < 0) {
    vhd_free(text);
    return r;
  }
  text[n] = '\0';
  size_t magic_len = strlen(MAGIC);
  if (strncmp(text, MAGIC "\n", magic_len + 1) != 0)
    r = vhd_error(EINVAL, "%s: line 1: not a libvhd merge record", jpath);
  char *line = text + magic_len + 1;
  for (unsigned lineno = 2; r == 0 && *line; lineno++) {
    char *end = strchr(line, '\n');
    if (!end) {
      r = vhd_error(EINVAL, "%s: line %u: cut short", jpath, lineno);
      break;
    }
    *end = '\0';
    r = parse_line(jpath, lineno, line, rec);
    line = end + 1;
  }
  if (r == 0 && (!rec->ancestor || !rec->count))
    r = vhd_error(EINVAL, "%s: the merge record names no %s", jpath,
                  rec->ancestor ? "image to remove" : "ancestor");
  vhd_free(text);
  if (r < 0)
    merge_record_free(rec);
  return r;
}

int merge_journal_remove(const char *jpath)
{
  if (unlink(jpath) != 0 && errno != ENOENT)
    return vhd_error(errno, "%s: cannot remove the merge record: %s", jpath, strerror(errno));
  return merge_sync_dir_of(jpath);
}
