/* SPDX-License-Identifier: BSD-3-Clause */
/* Parsing the loader's settings (see config.h). */
#include "config.h"
#include "efi_io.h"
#include "error.h"
#include "platform.h"
#include "util/strfmt.h"

#ifndef VHDBOOT_BOOT_FILE
#define VHDBOOT_BOOT_FILE "BOOTX64.EFI"
#endif

void config_init(struct config *c)
{
  memset(c, 0, sizeof *c);
  c->reserve_auto = true;
}

const char *config_mode_name(enum boot_mode m)
{
  switch (m) {
  case MODE_RO: return "ro";
  case MODE_COW: return "cow";
  case MODE_RW: return "rw";
  default: return "default";
  }
}

static bool parse_size(const char *s, uint64_t *out)
{
  uint64_t v = 0;
  if (*s < '0' || *s > '9')
    return false;
  for (; *s >= '0' && *s <= '9'; s++) {
    if (v > ((uint64_t)-1 - 9) / 10)
      return false;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  unsigned shift = 0;
  switch (*s) {
  case 'k': case 'K': shift = 10; s++; break;
  case 'm': case 'M': shift = 20; s++; break;
  case 'g': case 'G': shift = 30; s++; break;
  case 't': case 'T': shift = 40; s++; break;
  }
  if (shift && (*s == 'i' || *s == 'I'))
    s++;
  if (shift && (*s == 'b' || *s == 'B'))
    s++;
  if (*s || (shift && v > ((uint64_t)-1 >> shift)))
    return false;
  *out = v << shift;
  return true;
}

static int copy_value(char *dst, size_t cap, const char *val, const char *key,
                      const char *where)
{
  size_t n = strlen(val);
  if (n >= cap)
    return vhd_error(EINVAL, "%s: %s= is longer than %zu characters", where, key, cap - 1);
  memcpy(dst, val, n + 1);
  return 0;
}

static int set(struct config *c, const char *key, const char *val, const char *where)
{
  if (strcmp(key, "image") == 0)
    return copy_value(c->image, sizeof c->image, val, key, where);
  if (strcmp(key, "path") == 0)
    return copy_value(c->path, sizeof c->path, val, key, where);
  if (strcmp(key, "partition") == 0)
    return copy_value(c->partition, sizeof c->partition, val, key, where);
  if (strcmp(key, "args") == 0)
    return copy_value(c->args, sizeof c->args, val, key, where);
  if (strcmp(key, "mode") == 0) {
    if (strcmp(val, "ro") == 0)
      c->mode = MODE_RO;
    else if (strcmp(val, "cow") == 0)
      c->mode = MODE_COW;
    else if (strcmp(val, "rw") == 0)
      c->mode = MODE_RW;
    else
      return vhd_error(EINVAL, "%s: mode=%s: expected ro, cow or rw", where, val);
    return 0;
  }
  if (strcmp(key, "backend") == 0) {
    if (strcmp(val, "auto") == 0)
      c->backend = BACKEND_AUTO;
    else if (strcmp(val, "map") == 0)
      c->backend = BACKEND_MAP;
    else if (strcmp(val, "ram") == 0)
      c->backend = BACKEND_RAM;
    else
      return vhd_error(EINVAL, "%s: backend=%s: expected auto, map or ram", where, val);
    return 0;
  }
  if (strcmp(key, "reserve") == 0) {
    if (strcmp(val, "auto") == 0) {
      c->reserve_auto = true;
      return 0;
    }
    if (!parse_size(val, &c->reserve))
      return vhd_error(EINVAL, "%s: reserve=%s: expected a size such as 512M, or auto",
                       where, val);
    c->reserve_auto = false;
    return 0;
  }
  if (strcmp(key, "fallback") == 0) {
    if (strcmp(val, "none") != 0 && strcmp(val, "cow") != 0)
      return vhd_error(EINVAL, "%s: fallback=%s: expected none or cow", where, val);
    c->fallback_cow = strcmp(val, "cow") == 0;
    return 0;
  }
  return vhd_error(EINVAL, "%s: unknown setting \"%s\" (known: image, path, mode, partition, "
                   "reserve, fallback, args, backend)", where, key);
}

static bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

/* "key=value" with spaces around both trimmed; keys are case-insensitive. */
static int item(struct config *c, char *text, const char *where)
{
  char *eq = text;
  while (*eq && *eq != '=')
    eq++;
  if (!*eq)
    return vhd_error(EINVAL, "%s: \"%s\" is not a key=value setting", where, text);
  char *key = text, *val = eq + 1;
  char *k_end = eq;
  while (k_end > key && is_space(k_end[-1]))
    k_end--;
  *k_end = '\0';
  while (is_space(*key))
    key++;
  for (char *p = key; *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  while (is_space(*val))
    val++;
  char *v_end = val + strlen(val);
  while (v_end > val && is_space(v_end[-1]))
    v_end--;
  *v_end = '\0';
  return set(c, key, val, where);
}

int config_parse(struct config *c, const char *text, size_t len, bool as_options,
                 const char *source)
{
  vhd_snprintf(c->source, sizeof c->source, "%s", source);
  if (len >= 3 && (uint8_t)text[0] == 0xef && (uint8_t)text[1] == 0xbb &&
      (uint8_t)text[2] == 0xbf) {
    text += 3;
    len -= 3;
  }
  for (size_t i = 0; i < len; i++)
    if (text[i] == '\0')
      return vhd_error(EINVAL, "%s: not a text file (NUL byte at offset %zu)", source, i);
  char *buf = vhd_malloc(len + 1);
  if (!buf)
    return vhd_error(ENOMEM, "out of memory");
  memcpy(buf, text, len);
  buf[len] = '\0';
  int r = 0;
  if (!as_options) {
    unsigned line = 0;
    char *p = buf;
    while (*p && r == 0) {
      char *nl = p;
      while (*nl && *nl != '\n')
        nl++;
      char *next = *nl ? nl + 1 : nl;
      *nl = '\0';
      line++;
      char *t = p;
      while (is_space(*t))
        t++;
      if (*t && *t != '#') {
        char where[128];
        vhd_snprintf(where, sizeof where, "%s line %u", source, line);
        r = item(c, t, where);
      }
      p = next;
    }
  } else {
    /* Words separated by blanks; double quotes protect blanks and are
     * dropped. Words without '=' are not settings. */
    char *p = buf;
    while (*p && r == 0) {
      while (is_space(*p))
        p++;
      if (!*p)
        break;
      char *out = p, *in = p;
      bool quoted = false, has_eq = false;
      while (*in && (quoted || !is_space(*in))) {
        if (*in == '"') {
          quoted = !quoted;
          in++;
          continue;
        }
        if (*in == '=')
          has_eq = true;
        *out++ = *in++;
      }
      char *next = *in ? in + 1 : in;
      *out = '\0';
      if (has_eq)
        r = item(c, p, source);
      p = next;
    }
  }
  vhd_free(buf);
  return r;
}

int config_finish(struct config *c, const char *loader_dir)
{
  if (!c->image[0])
    return vhd_error(EINVAL, "%s: no image= setting", c->source);
  char *image = efi_path_normalise(loader_dir, c->image);
  if (!image)
    return vhd_error(ENOMEM, "out of memory");
  vhd_snprintf(c->image, sizeof c->image, "%s", image);
  vhd_free(image);
  char *path = efi_path_normalise(NULL, c->path[0] ? c->path : "\\EFI\\BOOT\\" VHDBOOT_BOOT_FILE);
  if (!path)
    return vhd_error(ENOMEM, "out of memory");
  vhd_snprintf(c->path, sizeof c->path, "%s", path);
  vhd_free(path);
  return 0;
}
