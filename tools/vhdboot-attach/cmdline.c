/* SPDX-License-Identifier: BSD-3-Clause */
/* Settings on the kernel command line (docs/linux-boot.md):
 *   vhdboot.image=PARTUUID=<guid>:<path>   the host partition by its GPT
 *   vhdboot.image=UUID=<fs uuid>:<path>    ... or by its file system's UUID
 *   vhdboot.mode=ro|cow|rw                 overrides the record's mode
 *   vhdboot.fstype=vfat|exfat|ext4|ntfs3   the host file system's type (ntfs: ntfs3)
 * Without a hand-off record vhdboot.image= is required; with one, it
 * replaces where the image is looked for (the record's extents are then
 * not used). */
#include "attach.h"

#include <stdio.h>
#include <string.h>

const char *mode_name(enum attach_mode mode)
{
  return mode == ATTACH_RO ? "ro" : mode == ATTACH_COW ? "cow" : "rw";
}

static int parse_mode(const char *v, struct request *rq)
{
  for (int m = ATTACH_RO; m <= ATTACH_RW; m++)
    if (strcmp(v, mode_name((enum attach_mode)m)) == 0) {
      rq->mode = (enum attach_mode)m;
      return 0;
    }
  return fail("vhdboot.mode=%s: expected ro, cow or rw", v);
}

static int parse_image(const char *v, struct request *rq)
{
  const char *colon = strchr(v, ':');
  if (!colon || colon[1] == '\0')
    return fail("vhdboot.image=%s: expected PARTUUID=<guid>:<path> or UUID=<uuid>:<path>", v);
  char key[80];
  size_t klen = (size_t)(colon - v);
  if (klen >= sizeof key)
    return fail("vhdboot.image=%s: partition key too long", v);
  memcpy(key, v, klen);
  key[klen] = '\0';
  if (strncmp(key, "PARTUUID=", 9) == 0) {
    if (guid_from_text(key + 9, rq->part_guid) < 0)
      return fail("vhdboot.image=%s: PARTUUID is not a GUID", v);
    rq->host_key = HOST_BY_PARTUUID;
  } else if (strncmp(key, "UUID=", 5) == 0 && key[5]) {
    if (strlen(key + 5) >= sizeof rq->fs_uuid)
      return fail("vhdboot.image=%s: UUID too long", v);
    memcpy(rq->fs_uuid, key + 5, strlen(key + 5) + 1);
    rq->host_key = HOST_BY_FSUUID;
  } else {
    return fail("vhdboot.image=%s: expected PARTUUID= or UUID= before the path", v);
  }
  const char *path = colon + 1;
  if (strlen(path) + 2 > sizeof rq->image)
    return fail("vhdboot.image=: path too long");
  char *d = rq->image;
  if (*path != '/' && *path != '\\')
    *d++ = '/';
  for (; *path; path++)
    *d++ = *path == '\\' ? '/' : *path;
  *d = '\0';
  /* Another partition than the record's: its geometry and extents say
   * nothing about this one. */
  rq->check_geometry = false;
  rq->fs = 0;
  request_free(rq);
  rq->from_record = false;
  return 0;
}

int cmdline_apply(const char *cmdline, struct request *rq)
{
  int applied = 0;
  char word[2048];
  const char *p = cmdline;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == '\n')
      p++;
    size_t n = strcspn(p, " \t\n");
    if (n == 0)
      break;
    if (n < sizeof word && strncmp(p, "vhdboot.", 8) == 0) {
      memcpy(word, p, n);
      word[n] = '\0';
      char *eq = strchr(word, '=');
      const char *val = eq ? eq + 1 : "";
      if (eq)
        *eq = '\0';
      int rc = 0;
      if (strcmp(word, "vhdboot.image") == 0)
        rc = parse_image(val, rq);
      else if (strcmp(word, "vhdboot.mode") == 0)
        rc = parse_mode(val, rq);
      else if (strcmp(word, "vhdboot.fstype") == 0) {
        if (strcmp(val, "ntfs") == 0)
          val = "ntfs3";   /* the kernel's read-write NTFS driver */
        if (strcmp(val, "vfat") && strcmp(val, "exfat") && strcmp(val, "ext4") &&
            strcmp(val, "ntfs3"))
          rc = fail("vhdboot.fstype=%s: expected vfat, exfat, ext4 or ntfs3", val);
        else
          snprintf(rq->fstype, sizeof rq->fstype, "%s", val);
      } else {
        p += n;
        continue;   /* vhdboot.* settings of the initramfs script */
      }
      if (rc < 0)
        return -1;
      applied++;
    }
    p += n;
  }
  return applied;
}
