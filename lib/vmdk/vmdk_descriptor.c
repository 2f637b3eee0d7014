/* SPDX-License-Identifier: BSD-3-Clause */
/* The VMDK text descriptor: header keys (CID, parentCID, createType,
 * parentFileNameHint) and extent lines ("RW 4194304 SPARSE "x-s001.vmdk"",
 * "RW 2048 FLAT "x-flat.vmdk" 0", "RW 2048 ZERO"). The disk database
 * (ddb.*) does not change what is read. */
#include "vmdk/vmdk.h"
#include "error.h"

/* value of KEY="..." or KEY=... on one line, into out. */
static bool line_value(const char *line, size_t n, const char *key, char *out, size_t cap)
{
  size_t k = strlen(key);
  if (n <= k || memcmp(line, key, k) != 0 || line[k] != '=')
    return false;
  const char *v = line + k + 1;
  size_t len = n - k - 1;
  if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
    v++;
    len -= 2;
  }
  if (len >= cap)
    len = cap - 1;
  memcpy(out, v, len);
  out[len] = 0;
  return true;
}

static bool hex32(const char *s, uint32_t *out)
{
  uint32_t v = 0;
  size_t i = 0;
  for (; s[i] && i < 8; i++) {
    unsigned c = (unsigned char)s[i] | 0x20u, d;
    if (s[i] >= '0' && s[i] <= '9')
      d = (unsigned)(s[i] - '0');
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return false;
    v = v << 4 | d;
  }
  *out = v;
  return i > 0 && s[i] == 0;
}

/* A decimal number at *p (advanced past it and the blanks after). */
static bool number(const char **p, const char *end, uint64_t *out)
{
  uint64_t v = 0;
  const char *s = *p;
  if (s == end || *s < '0' || *s > '9')
    return false;
  for (; s < end && *s >= '0' && *s <= '9'; s++) {
    if (v > (UINT64_MAX - 9) / 10)
      return false;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  while (s < end && (*s == ' ' || *s == '\t'))
    s++;
  *p = s;
  *out = v;
  return true;
}

static bool word(const char **p, const char *end, const char *w)
{
  size_t n = strlen(w);
  if ((size_t)(end - *p) < n || memcmp(*p, w, n) != 0 ||
      (*p + n < end && (*p)[n] != ' ' && (*p)[n] != '\t'))
    return false;
  *p += n;
  while (*p < end && (**p == ' ' || **p == '\t'))
    (*p)++;
  return true;
}

/* 1 and *out when the line is an extent line, 0 when it is not one, <0 on
 * a bad one. */
static int extent_line(struct vhd_image *img, const char *s, const char *end,
                       struct vmdk_extent_line *out)
{
  if (!word(&s, end, "RW") && !word(&s, end, "RDONLY")) {
    if (word(&s, end, "NOACCESS"))
      return vhd_error(ENOTSUP, "%s: VMDK descriptor: a NOACCESS extent cannot be read",
                       img->path);
    return 0;
  }
  memset(out, 0, sizeof *out);
  if (!number(&s, end, &out->sectors))
    return vhd_error(EINVAL, "%s: VMDK descriptor: an extent line has no sector count",
                     img->path);
  if (word(&s, end, "ZERO")) {
    out->kind = VMDK_EXTENT_ZERO;
    return s == end ? 1 : vhd_error(EINVAL, "%s: VMDK descriptor: text after a ZERO extent",
                                    img->path);
  }
  if (word(&s, end, "SPARSE"))
    out->kind = VMDK_EXTENT_SPARSE;
  else if (word(&s, end, "FLAT") || word(&s, end, "VMFS"))
    out->kind = VMDK_EXTENT_FLAT;
  else
    return vhd_error(ENOTSUP, "%s: VMDK descriptor: an extent type other than SPARSE, FLAT, "
                     "VMFS or ZERO (ESX sparse, raw device) is not read", img->path);
  const char *q = s < end && *s == '"' ? memchr(s + 1, '"', (size_t)(end - s - 1)) : NULL;
  if (!q || (size_t)(q - s - 1) >= sizeof out->name || q == s + 1)
    return vhd_error(EINVAL, "%s: VMDK descriptor: an extent's file name is not quoted, "
                     "empty or too long", img->path);
  memcpy(out->name, s + 1, (size_t)(q - s - 1));
  s = q + 1;
  while (s < end && (*s == ' ' || *s == '\t'))
    s++;
  if (s < end && (out->kind != VMDK_EXTENT_FLAT || !number(&s, end, &out->offset) || s != end))
    return vhd_error(EINVAL, "%s: VMDK descriptor: bad text after extent %s", img->path,
                     out->name);
  return 1;
}

int vmdk_parse_descriptor(struct vhd_image *img, struct vmdk *v, const char *text, size_t n,
                          char *create_type, size_t type_cap,
                          int (*add)(void *ctx, const struct vmdk_extent_line *line), void *ctx)
{
  char value[VMDK_NAME_MAX];
  bool has_parent_cid = false;
  const char *nul = memchr(text, 0, n);
  if (nul)
    n = (size_t)(nul - text);
  v->parent_cid = UINT32_MAX;
  create_type[0] = 0;
  for (size_t i = 0; i < n;) {
    size_t e = i;
    while (e < n && text[e] != '\n')
      e++;
    const char *line = text + i;
    size_t len = e - i;
    i = e + 1;
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
      len--;
    if (len == 0 || line[0] == '#')
      continue;
    struct vmdk_extent_line ext;
    int r = extent_line(img, line, line + len, &ext);
    if (r < 0)
      return r;
    if (r == 1) {
      if ((r = add(ctx, &ext)) < 0)
        return r;
      continue;
    }
    bool ok = true;
    if (line_value(line, len, "createType", value, sizeof value)) {
      size_t t = strlen(value) < type_cap ? strlen(value) : type_cap - 1;
      memcpy(create_type, value, t);
      create_type[t] = 0;
    } else if (line_value(line, len, "CID", value, sizeof value))
      ok = hex32(value, &v->cid);
    else if (line_value(line, len, "parentCID", value, sizeof value)) {
      ok = hex32(value, &v->parent_cid);
      has_parent_cid = v->parent_cid != UINT32_MAX;
    } else if (line_value(line, len, "parentFileNameHint", value, sizeof value)) {
      vhd_free(v->parent_hint);
      v->parent_hint = vhd_malloc(strlen(value) + 1);
      if (!v->parent_hint)
        return vhd_error(ENOMEM, "%s: out of memory", img->path);
      strcpy(v->parent_hint, value);
    }
    if (!ok)
      return vhd_error(EINVAL, "%s: VMDK descriptor: a CID is not hexadecimal", img->path);
  }
  if (has_parent_cid != (v->parent_hint != NULL))
    return vhd_error(EINVAL, "%s: VMDK descriptor: parentCID and parentFileNameHint do not "
                     "come together", img->path);
  return 0;
}
