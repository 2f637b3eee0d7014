/* SPDX-License-Identifier: BSD-3-Clause */
/* A freestanding subset of vsnprintf (see strfmt.h for what it supports).
 * The core formats error messages with it so it needs no stdio. */
#include "strfmt.h"
#include "platform.h"

struct out {
  char *buf;
  size_t size;
  size_t len;   /* length wanted so far */
};

static void put_char(struct out *o, char c)
{
  if (o->len + 1 < o->size)
    o->buf[o->len] = c;
  o->len++;
}

static void put_padded(struct out *o, const char *s, size_t n, int width,
                       bool left, char pad)
{
  int fill = width > (int)n ? width - (int)n : 0;
  if (!left)
    while (fill-- > 0)
      put_char(o, pad);
  for (size_t i = 0; i < n; i++)
    put_char(o, s[i]);
  if (left)
    while (fill-- > 0)
      put_char(o, ' ');
}

static size_t utoa(unsigned long long v, unsigned base, bool upper, char *tmp)
{
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char rev[32];
  size_t n = 0;
  do {
    rev[n++] = digits[v % base];
    v /= base;
  } while (v);
  for (size_t i = 0; i < n; i++)
    tmp[i] = rev[n - 1 - i];
  return n;
}

int vhd_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
  struct out o = { buf, size, 0 };
  for (const char *p = fmt; *p; p++) {
    if (*p != '%') {
      put_char(&o, *p);
      continue;
    }
    p++;
    bool left = false;
    char pad = ' ';
    for (;; p++) {
      if (*p == '-')
        left = true;
      else if (*p == '0')
        pad = '0';
      else
        break;
    }
    int width = 0;
    if (*p == '*') {
      width = va_arg(ap, int);
      p++;
    } else {
      while (*p >= '0' && *p <= '9')
        width = width * 10 + (*p++ - '0');
    }
    int prec = -1;
    if (*p == '.') {
      p++;
      prec = 0;
      if (*p == '*') {
        prec = va_arg(ap, int);
        p++;
      } else {
        while (*p >= '0' && *p <= '9')
          prec = prec * 10 + (*p++ - '0');
      }
    }
    int longs = 0;
    bool size_t_mod = false;
    while (*p == 'l') {
      longs++;
      p++;
    }
    if (*p == 'z') {
      size_t_mod = true;
      p++;
    }
    char tmp[40];
    switch (*p) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      if (!s)
        s = "(null)";
      size_t n = 0;
      while (s[n] && (prec < 0 || n < (size_t)prec))
        n++;
      put_padded(&o, s, n, width, left, ' ');
      break;
    }
    case 'c':
      tmp[0] = (char)va_arg(ap, int);
      put_padded(&o, tmp, 1, width, left, ' ');
      break;
    case 'd':
    case 'i': {
      long long v = size_t_mod ? (long long)va_arg(ap, size_t)
                  : longs >= 2 ? va_arg(ap, long long)
                  : longs == 1 ? va_arg(ap, long)
                  : va_arg(ap, int);
      size_t n = 0;
      unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
      if (v < 0)
        tmp[n++] = '-';
      n += utoa(mag, 10, false, tmp + n);
      put_padded(&o, tmp, n, width, left, pad);
      break;
    }
    case 'u':
    case 'x':
    case 'X': {
      unsigned long long v = size_t_mod ? va_arg(ap, size_t)
                           : longs >= 2 ? va_arg(ap, unsigned long long)
                           : longs == 1 ? va_arg(ap, unsigned long)
                           : va_arg(ap, unsigned);
      size_t n = utoa(v, *p == 'u' ? 10 : 16, *p == 'X', tmp);
      put_padded(&o, tmp, n, width, left, pad);
      break;
    }
    case 'p': {
      uintptr_t v = (uintptr_t)va_arg(ap, void *);
      tmp[0] = '0';
      tmp[1] = 'x';
      size_t n = 2 + utoa(v, 16, false, tmp + 2);
      put_padded(&o, tmp, n, width, left, ' ');
      break;
    }
    case '%':
      put_char(&o, '%');
      break;
    case '\0':
      p--;
      break;
    default:
      put_char(&o, '%');
      put_char(&o, *p);
      break;
    }
  }
  if (size)
    buf[o.len < size ? o.len : size - 1] = '\0';
  return (int)o.len;
}

int vhd_snprintf(char *buf, size_t size, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vhd_vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

char *vhd_strndup(const char *s, size_t n)
{
  size_t len = 0;
  while (len < n && s[len])
    len++;
  char *r = vhd_malloc(len + 1);
  if (r) {
    memcpy(r, s, len);
    r[len] = '\0';
  }
  return r;
}

char *vhd_strdup(const char *s) { return vhd_strndup(s, (size_t)-1); }
