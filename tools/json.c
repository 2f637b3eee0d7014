/* SPDX-License-Identifier: BSD-3-Clause */
/* A small streaming JSON writer for `info --json` and `check --json`.
 * Pretty-printed with two-space indents like qemu-img's JSON, keys in the
 * order the caller writes them, so the output is stable for scripts. */
#include <inttypes.h>
#include <stdio.h>

#include "vhdtool.h"

void json_init(struct json_writer *w, FILE *out)
{
  w->out = out;
  w->depth = 0;
  w->has_items[0] = false;
  w->after_key = false;
}

static void newline_indent(struct json_writer *w)
{
  fputc('\n', w->out);
  for (int i = 0; i < w->depth; i++)
    fputs("  ", w->out);
}

/* Before any value: a comma and a new line inside containers, nothing
 * after a key (the value follows "key": on the same line). */
static void begin_value(struct json_writer *w)
{
  if (w->after_key) {
    w->after_key = false;
    return;
  }
  if (w->depth > 0) {
    if (w->has_items[w->depth])
      fputc(',', w->out);
    newline_indent(w);
  }
  w->has_items[w->depth] = true;
}

static void open_container(struct json_writer *w, char c)
{
  begin_value(w);
  fputc(c, w->out);
  if (w->depth + 1 < JSON_MAX_DEPTH)
    w->depth++;
  w->has_items[w->depth] = false;
}

static void close_container(struct json_writer *w, char c)
{
  bool had_items = w->has_items[w->depth];
  if (w->depth > 0)
    w->depth--;
  if (had_items)
    newline_indent(w);
  fputc(c, w->out);
}

void json_begin_object(struct json_writer *w) { open_container(w, '{'); }
void json_end_object(struct json_writer *w) { close_container(w, '}'); }
void json_begin_array(struct json_writer *w) { open_container(w, '['); }
void json_end_array(struct json_writer *w) { close_container(w, ']'); }

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when the bytes there
 * are not valid UTF-8 (overlong forms, surrogates, > U+10FFFF included). */
static int utf8_sequence(const unsigned char *s)
{
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    return (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
      return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    if (s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
      return 0;
    return 4;
  }
  return 0;
}

static void write_escaped(FILE *out, const char *str)
{
  const unsigned char *s = (const unsigned char *)str;
  fputc('"', out);
  while (*s) {
    unsigned char c = *s;
    switch (c) {
    case '"': fputs("\\\"", out); s++; continue;
    case '\\': fputs("\\\\", out); s++; continue;
    case '\b': fputs("\\b", out); s++; continue;
    case '\f': fputs("\\f", out); s++; continue;
    case '\n': fputs("\\n", out); s++; continue;
    case '\r': fputs("\\r", out); s++; continue;
    case '\t': fputs("\\t", out); s++; continue;
    default: break;
    }
    if (c < 0x20) {
      fprintf(out, "\\u%04x", c);
      s++;
      continue;
    }
    /* The sequence check stops at the NUL: a truncated sequence fails
     * the continuation-byte test on the terminator. */
    int n = utf8_sequence(s);
    if (n == 0) {
      /* File names are bytes; a JSON document must be Unicode. */
      fputs("\\ufffd", out);
      s++;
      continue;
    }
    fwrite(s, 1, (size_t)n, out);
    s += n;
  }
  fputc('"', out);
}

void json_key(struct json_writer *w, const char *key)
{
  begin_value(w);
  write_escaped(w->out, key);
  fputs(": ", w->out);
  w->after_key = true;
}

void json_string(struct json_writer *w, const char *s)
{
  if (!s) {
    json_null(w);
    return;
  }
  begin_value(w);
  write_escaped(w->out, s);
}

void json_uint(struct json_writer *w, uint64_t v)
{
  begin_value(w);
  fprintf(w->out, "%" PRIu64, v);
}

void json_bool(struct json_writer *w, bool v)
{
  begin_value(w);
  fputs(v ? "true" : "false", w->out);
}

void json_null(struct json_writer *w)
{
  begin_value(w);
  fputs("null", w->out);
}

void json_finish(struct json_writer *w)
{
  fputc('\n', w->out);
}

void json_member_string(struct json_writer *w, const char *key, const char *s)
{
  json_key(w, key);
  json_string(w, s);
}

void json_member_uint(struct json_writer *w, const char *key, uint64_t v)
{
  json_key(w, key);
  json_uint(w, v);
}

void json_member_bool(struct json_writer *w, const char *key, bool v)
{
  json_key(w, key);
  json_bool(w, v);
}

void json_member_null(struct json_writer *w, const char *key)
{
  json_key(w, key);
  json_null(w);
}
