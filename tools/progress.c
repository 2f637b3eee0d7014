/* SPDX-License-Identifier: BSD-3-Clause */
/* The progress bar of `convert -p`, and the interrupt flag that lets a
 * long operation stop through the library's cancel path (the progress
 * callback returning non-zero) instead of dying half-way. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vhdtool.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
  got_signal = sig;
}

void install_interrupt_handler(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  /* No SA_RESTART: a blocking read of stdin must return so that the
   * command can notice the flag. */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

bool interrupted(void)
{
  return got_signal != 0;
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_init(struct progress *p, bool wanted, uint64_t bytes_total)
{
  memset(p, 0, sizeof *p);
  p->draw = wanted && isatty(STDERR_FILENO);
  p->bytes_total = bytes_total;
  p->start = now();
  p->last_draw = -1.0;
}

static void format_duration(double secs, char *buf, size_t len)
{
  if (secs < 0 || secs > 359999.0) {
    snprintf(buf, len, "--:--");
    return;
  }
  unsigned s = (unsigned)(secs + 0.5);
  if (s >= 3600)
    snprintf(buf, len, "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
  else
    snprintf(buf, len, "%02u:%02u", s / 60, s % 60);
}

/* final: the work is done; show how long it took instead of time left. */
static void draw(struct progress *p, double fraction, double t, bool final)
{
  enum { WIDTH = 30 };
  char bar[WIDTH + 1];
  int filled = (int)(fraction * WIDTH);
  for (int i = 0; i < WIDTH; i++)
    bar[i] = i < filled ? '#' : '.';
  bar[WIDTH] = '\0';

  /* The callback's unit is the library's business; the rate is shown in
   * bytes of virtual disk, so scale the fraction by the disk size. */
  double elapsed = t - p->start;
  double bytes_done = fraction * (double)p->bytes_total;
  double rate = elapsed > 0.05 ? bytes_done / elapsed : 0.0;
  char rate_text[48], left_text[32];
  if (rate > 0) {
    char sz[32];
    format_size((uint64_t)rate, sz, sizeof sz);
    snprintf(rate_text, sizeof rate_text, "%s/s", sz);
    format_duration(final ? elapsed : ((double)p->bytes_total - bytes_done) / rate,
                    left_text, sizeof left_text);
  } else {
    snprintf(rate_text, sizeof rate_text, "-");
    if (final)
      format_duration(elapsed, left_text, sizeof left_text);
    else
      snprintf(left_text, sizeof left_text, "--:--");
  }
  /* "\033[K" clears what a longer previous line left behind. */
  if (final)
    fprintf(stderr, "\r[%s] %5.1f%%  %12s  in %s\033[K", bar, fraction * 100.0, rate_text,
            left_text);
  else
    fprintf(stderr, "\r[%s] %5.1f%%  %12s  %s left\033[K", bar, fraction * 100.0,
            rate_text, left_text);
  fflush(stderr);
  p->drawn = true;
  p->last_draw = t;
}

int progress_update(void *opaque, uint64_t done, uint64_t total)
{
  struct progress *p = opaque;
  if (interrupted())
    return 1;
  if (!p->draw)
    return 0;
  double t = now();
  /* Ten redraws a second are plenty and keep a fast copy fast. */
  if (p->last_draw >= 0 && t - p->last_draw < 0.1 && done < total)
    return 0;
  double fraction = total ? (double)done / (double)total : 1.0;
  if (fraction > 1.0)
    fraction = 1.0;
  draw(p, fraction, t, false);
  return 0;
}

void progress_finish(struct progress *p, bool complete)
{
  if (!p->draw)
    return;
  if (complete)
    draw(p, 1.0, now(), true);
  if (p->drawn)
    fputc('\n', stderr);
}
