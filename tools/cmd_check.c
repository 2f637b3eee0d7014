/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool check: validate every structure of an image (vhd_check) and
 * exit as qemu-img check does, so scripts written for it keep working. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdtool.h"

struct finding {
  enum vhd_check_severity severity;
  bool violation;          /* a broken profile rule (--profile) */
  char *message;
};

/* Findings are printed as they come in text mode and kept for JSON, where
 * they belong inside the one object printed at the end. */
struct findings {
  bool json;
  bool out_of_memory;
  bool profile_phase;      /* findings now come from vhd_profile_check */
  const char *profile;     /* --profile NAME, or NULL */
  unsigned violations;
  uint64_t counted_shown;  /* corruptions, leaks, warnings the library showed */
  size_t count, cap;
  struct finding *items;
};

static const char *severity_name(enum vhd_check_severity s)
{
  switch (s) {
  case VHD_CHECK_INFO: return "info";
  case VHD_CHECK_WARNING: return "warning";
  case VHD_CHECK_LEAK: return "leak";
  case VHD_CHECK_CORRUPTION: return "corruption";
  }
  return "unknown";
}

static void on_finding(void *opaque, enum vhd_check_severity sev, const char *message)
{
  struct findings *f = opaque;
  if (!message)
    message = "";
  if (!f->profile_phase && sev != VHD_CHECK_INFO)
    f->counted_shown++;
  if (!f->json) {
    printf("%s: %s\n", f->profile_phase ? "violation" : severity_name(sev), message);
    return;
  }
  if (f->count == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 16;
    struct finding *items = realloc(f->items, cap * sizeof *items);
    if (!items) {
      f->out_of_memory = true;
      return;
    }
    f->items = items;
    f->cap = cap;
  }
  char *copy = strdup(message);
  if (!copy) {
    f->out_of_memory = true;
    return;
  }
  f->items[f->count].severity = sev;
  f->items[f->count].violation = f->profile_phase;
  f->items[f->count].message = copy;
  f->count++;
}

static const char *result_name(const struct vhd_check_result *r)
{
  if (r->corruptions)
    return "corrupt";
  if (r->leaks)
    return "leaked";
  return "clean";
}

static void print_summary(const char *path, const struct vhd_check_result *r)
{
  char buf[64];
  if (r->corruptions == 0 && r->leaks == 0)
    printf("No errors were found on %s.\n", path);
  if (r->corruptions)
    printf("%u corruption%s found on %s.\n", r->corruptions,
           r->corruptions == 1 ? "" : "s", path);
  if (r->leaks)
    printf("%u leak%s found, %s of unused space.\n", r->leaks, r->leaks == 1 ? "" : "s",
           format_size_exact(r->leaked_bytes, buf, sizeof buf));
  if (r->warnings)
    printf("%u warning%s.\n", r->warnings, r->warnings == 1 ? "" : "s");
  if (r->repairs)
    printf("%u repair%s made.\n", r->repairs, r->repairs == 1 ? "" : "s");
  if (r->log_needs_replay)
    printf("The VHDX log holds entries to replay; opening the image read-write "
           "replays them.\n");
}

static void print_json(const char *path, const struct vhd_check_result *r,
                       const struct findings *f)
{
  struct json_writer w;
  json_init(&w, stdout);
  json_begin_object(&w);
  json_member_string(&w, "filename", path);
  json_member_string(&w, "format", vhd_format_name(r->format));
  json_member_string(&w, "type", vhd_type_name(r->type));
  json_member_uint(&w, "corruptions", r->corruptions);
  json_member_uint(&w, "leaks", r->leaks);
  json_member_uint(&w, "leaked-bytes", r->leaked_bytes);
  json_member_uint(&w, "warnings", r->warnings);
  json_member_bool(&w, "log-needs-replay", r->log_needs_replay != 0);
  json_member_uint(&w, "repairs", r->repairs);
  /* The library shows the first few findings of each kind and counts the
   * rest (one info finding per kind says how many): the total left out. */
  uint64_t counted = (uint64_t)r->corruptions + r->leaks + r->warnings;
  json_member_uint(&w, "findings-not-shown",
                   counted > f->counted_shown ? counted - f->counted_shown : 0);
  json_key(&w, "findings");
  json_begin_array(&w);
  for (size_t i = 0; i < f->count; i++) {
    json_begin_object(&w);
    json_member_string(&w, "severity", f->items[i].violation
                                           ? "violation" : severity_name(f->items[i].severity));
    json_member_string(&w, "message", f->items[i].message);
    json_end_object(&w);
  }
  json_end_array(&w);
  if (f->profile) {
    json_member_string(&w, "profile", f->profile);
    json_member_uint(&w, "profile-violations", f->violations);
  }
  json_member_string(&w, "result", result_name(r));
  json_end_object(&w);
  json_finish(&w);
}

/* The platform's rules, on an image whose structures are sound enough to
 * open; a corrupt one already fails the check, so it is not opened here. */
static int check_profile(const char *path, enum vhd_profile profile, struct findings *f,
                         const struct vhd_check_result *result)
{
  if (result->corruptions)
    return 0;
  vhd_image *img;
  int r = open_with_options(path, VHD_OPEN_RDONLY, &img);
  if (r < 0)
    return r;
  f->profile_phase = true;
  r = vhd_profile_check(img, profile, on_finding, f, &f->violations);
  f->profile_phase = false;
  vhd_close(img);
  if (r == 0 && !f->json && f->violations == 0)
    printf("The image follows the %s profile's rules.\n", f->profile);
  else if (r == 0 && !f->json)
    printf("%u %s profile rule%s broken.\n", f->violations, f->profile,
           f->violations == 1 ? "" : "s");
  return r;
}

/* A file by path (with the open options), an NBD URI through its backend. */
static int check_any(const char *path, unsigned check_flags, struct findings *f,
                     struct vhd_check_result *result)
{
  if (!vhd_is_nbd_uri(path)) {
    struct vhd_open_params op = open_params(0);
    return vhd_check_with(path, &op, check_flags, on_finding, f, result);
  }
  vhd_io *io;
  unsigned io_flags = (check_flags & VHD_CHECK_REPAIR) ? VHD_IO_RDWR : VHD_IO_RDONLY;
  int r = open_nbd_io(path, io_flags, &io);
  if (r < 0)
    return r;
  r = vhd_check_io(io, check_flags, on_finding, f, result);
  vhd_io_close(io);
  return r;
}

enum { OPT_REPAIR = 256, OPT_PROFILE };

static const struct option long_options[] = {
  OUTPUT_LONG_OPTIONS,
  {"repair", no_argument, NULL, OPT_REPAIR},
  {"profile", required_argument, NULL, OPT_PROFILE},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static int run(int argc, char **argv)
{
  const char *me = "check";
  struct findings f = {0};
  unsigned check_flags = 0;
  enum vhd_profile profile = 0;
  int c;

  while ((c = getopt_long(argc, argv, ":Uh", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_OUTPUT_JSON:
    case OPT_OUTPUT_FORMAT:
      if (!take_output_option(me, c, optarg, &f.json))
        return EXIT_FAIL;
      break;
    case OPT_REPAIR:
      check_flags |= VHD_CHECK_REPAIR;
      break;
    case OPT_PROFILE:
      if (vhd_profile_from_name(optarg, &profile) < 0)
        return usage_error(me, "unknown profile '%s' (azure, hyperv or virtualpc)", optarg);
      f.profile = vhd_profile_name(profile);
      break;
    case 'h':
      print_command_help(&cmd_check, stdout);
      return EXIT_OK;
    default: {
      int st;
      if (!open_option_or_error(me, c, argv, long_options, &st))
        return st;
      break;
    }
    }
  }
  const char *path = single_file_operand(me, argc, argv, optind);
  if (!path)
    return EXIT_FAIL;

  struct vhd_check_result result;
  memset(&result, 0, sizeof result);
  int r = check_any(path, check_flags, &f, &result);
  if (r == 0 && profile)
    r = check_profile(path, profile, &f, &result);

  int st;
  if (r < 0) {
    st = fail_lib(path, r);
  } else if (f.out_of_memory) {
    st = fail("%s: out of memory while collecting the check's findings", path);
  } else {
    if (f.json)
      print_json(path, &result, &f);
    else
      print_summary(path, &result);
    st = result.corruptions ? EXIT_CHECK_CORRUPT
         : f.violations     ? EXIT_CHECK_PROFILE
         : result.leaks     ? EXIT_CHECK_LEAKED
                            : EXIT_OK;
  }
  for (size_t i = 0; i < f.count; i++)
    free(f.items[i].message);
  free(f.items);
  return st;
}

const struct command cmd_check = {
  .name = "check",
  .summary = "Check an image's structures for corruption and leaked space.",
  .synopsis = "vhdtool check [--repair] [--profile azure|hyperv|virtualpc]\n"
              "                     [--json | --output=json|human] FILE",
  .help =
    "Options:\n"
    "      --repair fix what can be fixed without losing readable data (a\n"
    "               footer from its copy, checksums, leaked space, BAT entries\n"
    "               past the end, a VHDX log to replay); each change is printed\n"
    "               as \"info: repaired: ...\", then the image is checked again\n"
    "      --profile azure|hyperv|virtualpc\n"
    "               also check the rules of that platform (each broken rule\n"
    "               printed as \"violation: PROFILE.RULE: ...\")\n"
    "      --json   print one JSON object (fields in docs/vhdtool.md)\n"
    "      --output=json|human\n"
    "               the same as --json, or the default text\n"
    "  -h, --help   show this help\n"
    "\n"
    "Without --repair the image is only read. Each finding is printed with its\n"
    "severity (info, warning, leak, corruption), then a summary.\n"
    "\n"
    "Exit status (as qemu-img check; after --repair, of the repaired image):\n"
    "  0  no corruption and no leaked space\n"
    "  1  the check could not run (unreadable file, not an image, bad usage)\n"
    "  2  corruption found\n"
    "  3  leaked space found, no corruption (and no broken profile rule)\n"
    "  4  --profile: a rule of the profile is broken, no corruption\n",
  .run = run,
  .open_options = true,
};
