/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool: the pieces the subcommands share.
 *
 * vhdtool is a thin command line over include/vhd.h. Nothing here knows the
 * on-disk formats; the helpers only parse arguments, print, and report
 * errors in the one-line style every failure uses. */
#ifndef VHDTOOL_H
#define VHDTOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vhd.h"

/* Exit statuses. check adds 2 (corruption) and 3 (leaks only), as
 * qemu-img check does; every other failure, usage errors included, is 1. */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_CHECK_CORRUPT 2
#define EXIT_CHECK_LEAKED 3
#define EXIT_CHECK_PROFILE 4   /* check --profile: a platform rule is broken */

/* One subcommand. help is the text after the synopsis in `vhdtool help
 * CMD`; options are listed there. */
struct command {
  const char *name;
  const char *summary;    /* one line for `vhdtool help` */
  const char *synopsis;   /* "vhdtool create [-f vhd|vhdx] ... FILE" */
  const char *help;
  int (*run)(int argc, char **argv);  /* argv[0] is the command name */
  bool open_options;      /* takes OPEN_LONG_OPTIONS (open_options.c) */
};

extern const struct command cmd_create;
extern const struct command cmd_info;
extern const struct command cmd_convert;
extern const struct command cmd_read;
extern const struct command cmd_write;
extern const struct command cmd_check;
extern const struct command cmd_compact;
extern const struct command cmd_resize;
extern const struct command cmd_snapshot;
extern const struct command cmd_merge;
extern const struct command cmd_set_parent;
extern const struct command cmd_map;
extern const struct command cmd_boot_prepare;
extern const struct command cmd_reset_id;
extern const struct command cmd_attach;
extern const struct command cmd_detach;
extern const struct command cmd_compare;
extern const struct command cmd_measure;

/* usage.c ----------------------------------------------------------- */

/* All commands, in the order `vhdtool help` lists them. NULL-terminated. */
extern const struct command *const commands[];
const struct command *find_command(const char *name);
void print_general_help(FILE *out);
void print_command_help(const struct command *cmd, FILE *out);
void print_version(FILE *out);

/* Print "vhdtool CMD: <message> (try 'vhdtool help CMD')" on one line and
 * return EXIT_FAIL. */
int usage_error(const char *cmd, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

/* Turn a getopt_long() '?' or ':' result into a usage error; options is
 * the command's long option table (to name the candidates of an ambiguous
 * abbreviation). */
struct option;
int option_error(const char *cmd, int c, char **argv, const struct option *options);

/* report.c ---------------------------------------------------------- */

/* prefix + msg + newline on stderr, with any newline in msg turned into a
 * space: the single place that guarantees one line per message. */
void print_line(const char *prefix, const char *msg);

/* Print "vhdtool: <message>" on one line (newlines in the message become
 * spaces, so a failure is always exactly one line) and return EXIT_FAIL. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report a libvhd failure: vhd_last_error() already names the file; when
 * it is empty, fall back to "path: strerror(-err)". Returns EXIT_FAIL. */
int fail_lib(const char *path, int err);

/* "vhdtool: warning: <message>" on one line. */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* size.c ------------------------------------------------------------ */

/* Parse "4096", "64K", "1G", "1GiB", "2m"... (powers of 1024). false on
 * anything else, with *why set to a short reason. */
bool parse_size(const char *text, uint64_t *out, const char **why);

/* Parse a size option; on failure print a usage error and return false. */
bool parse_size_option(const char *cmd, const char *option, const char *text,
                       uint64_t *out);

/* "1 GiB", "1.50 MiB", "512 bytes" into buf. */
const char *format_size(uint64_t bytes, char *buf, size_t len);
/* The same with the exact count: "1 GiB (1073741824 bytes)", "512 bytes". */
const char *format_size_exact(uint64_t bytes, char *buf, size_t len);

/* names.c ----------------------------------------------------------- */

/* "vhd", "vhdx", "raw" -> format; false when unknown. */
bool parse_format(const char *name, enum vhd_format *out);
bool parse_type(const char *name, enum vhd_disk_type *out);

/* The format a file name asks for: .vhd/.avhd -> vhd, .vhdx/.avhdx -> vhdx,
 * and (when allow_raw) .raw/.img -> raw. Case-insensitive. false when the
 * extension says nothing. */
bool format_from_extension(const char *path, bool allow_raw, enum vhd_format *out);

/* Text of a 16-byte id. VHD keeps RFC 4122 byte order, VHDX the Microsoft
 * mixed-endian GUID layout; ids are printed as each format's own tools
 * print them. */
void format_id(enum vhd_format format, const uint8_t id[16], char out[37]);
bool id_is_zero(const uint8_t id[16]);

/* A sector size option (named without its dashes): 512 or 4096. */
bool parse_sector_size(const char *cmd, const char *option, const char *text,
                       uint32_t *out);

/* operands.c -------------------------------------------------------- */

/* argv[first] when it is the only operand left; otherwise print the usage
 * error ("missing FILE" or "unexpected argument") and return NULL. */
const char *single_file_operand(const char *cmd, int argc, char **argv, int first);

/* vhd_open + vhd_get_info. EXIT_OK, or the failure reported (one line)
 * and EXIT_FAIL with *img NULL. */
int open_image(const char *path, unsigned flags, vhd_image **img, struct vhd_info *info);

/* open_image read-only for a source named with -f FMT: raw skips probing,
 * vhd or vhdx must be what the content says (AUTO: anything). */
int open_source(const char *path, enum vhd_format format, vhd_image **img,
                struct vhd_info *info);

/* The end of a command that changed img in place: r (the library call's
 * result) reported, interrupted_note when SIGINT cancelled it (the image
 * is valid either way: say what to do), then img closed. EXIT_OK or
 * EXIT_FAIL. */
int close_in_place(const char *path, vhd_image *img, int r, const char *interrupted_note);

/* open_options.c ---------------------------------------------------- */

/* Options of every command that opens an existing image: put
 * OPEN_LONG_OPTIONS in its long option table, "U" in its short ones, and
 * hand unknown option characters to take_open_option() first. */
enum {
  OPT_NO_PARENT = 0x1000,
  OPT_PARENT_DIR,
  OPT_RAW_PARENT,
  OPT_PARENT_URI,
  OPT_FORCE_SHARE = 'U',
};
#define OPEN_LONG_OPTIONS                                       \
  {"no-parent", no_argument, NULL, OPT_NO_PARENT},              \
  {"parent-dir", required_argument, NULL, OPT_PARENT_DIR},      \
  {"raw-parent", no_argument, NULL, OPT_RAW_PARENT},            \
  {"parent-uri", required_argument, NULL, OPT_PARENT_URI},      \
  {"force-share", no_argument, NULL, OPT_FORCE_SHARE}

/* For the default case of a command's option switch: true when c was one
 * of those options and was taken; false with *status set (the usage error
 * already printed) when it was bad or no option of the command at all. */
bool open_option_or_error(const char *cmd, int c, char **argv,
                          const struct option *options, int *status);
/* The parameters those options set, with flags added. */
struct vhd_open_params open_params(unsigned flags);
bool force_share_requested(void);
/* vhd_open_with(path, open_params(flags), img); an NBD URI (is_nbd_uri)
 * (vhd_is_nbd_uri) is opened through libnbd, its parents from --parent-uri. */
int open_with_options(const char *path, unsigned flags, vhd_image **img);
/* The backend of an NBD URI with the --parent-uri list (flags VHD_IO_*). */
int open_nbd_io(const char *uri, unsigned io_flags, vhd_io **io);
/* Their help text, appended to the help of each command that takes them. */
extern const char open_options_help[];

/* output_option.c -------------------------------------------------- */

/* --json and --output=json|human, for every command that prints JSON: put
 * OUTPUT_LONG_OPTIONS in its long option table and hand both results to
 * take_output_option(). */
enum { OPT_OUTPUT_JSON = 0x1100, OPT_OUTPUT_FORMAT };
#define OUTPUT_LONG_OPTIONS                                     \
  {"json", no_argument, NULL, OPT_OUTPUT_JSON},                 \
  {"output", required_argument, NULL, OPT_OUTPUT_FORMAT}
/* Sets *json from option c (with its argument arg); false after printing
 * the usage error of an unknown format. */
bool take_output_option(const char *cmd, int c, const char *arg, bool *json);
/* output_params.c --------------------------------------------------- */

/* The output options convert and measure share: put OUTPUT_PARAMS_LONG_OPTIONS in
 * the long option table, "O:f:t:b:" in the short ones, and hand option
 * characters to output_option() first. */
enum { OPT_OUT_SECTOR_SIZE = 0x1200, OPT_OUT_PROFILE };
#define OUTPUT_PARAMS_LONG_OPTIONS                                        \
  {"output-format", required_argument, NULL, 'O'},                 \
  {"source-format", required_argument, NULL, 'f'},                 \
  {"type", required_argument, NULL, 't'},                          \
  {"block-size", required_argument, NULL, 'b'},                    \
  {"sector-size", required_argument, NULL, OPT_OUT_SECTOR_SIZE},       \
  {"profile", required_argument, NULL, OPT_OUT_PROFILE}
struct output_choice {
  struct vhd_create_params p;   /* format, type, sector size */
  bool have_format, have_type;  /* -O, -t given */
  enum vhd_format src_format;   /* -f */
  uint64_t block_size;          /* -b, 0 if not given */
  enum vhd_profile profile;     /* --profile, 0 if not given */
};
void output_choice_init(struct output_choice *o);
/* 1: c was one of those options and is taken; 0: it is not one; -1: its
 * value is bad (the usage error printed). */
int output_option(const char *me, int c, const char *arg, struct output_choice *o);

/* The output options a profile decides must not say otherwise; the format
 * is the one asked for (have_format). EXIT_OK, or the usage error printed
 * and EXIT_FAIL. */
int profile_conflicts(const char *me, enum vhd_profile profile, struct vhd_create_params *p,
                      bool have_format, bool have_type, uint64_t block_size);
/* A raw output takes no -t or -b (its type becomes NONE); p->block_size
 * set. EXIT_OK or EXIT_FAIL (usage error printed). */
int settle_output_type(const char *me, struct vhd_create_params *p, bool have_type,
                       uint64_t block_size);

/* files.c ----------------------------------------------------------- */

/* True when path names an existing directory entry (even a dangling
 * symlink: creating over it would write through or fail). */
bool path_exists(const char *path);

/* Write all of buf to fd, retrying short writes and EINTR. 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);

/* Read up to len bytes from fd, stopping only at end of input: retries
 * short reads and EINTR. Returns bytes read (< len only at EOF) or -errno. */
long long read_full(int fd, void *buf, size_t len);

/* json.c ------------------------------------------------------------ */

/* A streaming JSON writer: pretty-printed, keys in the order written.
 * Strings are escaped (quote, backslash, control characters); valid UTF-8
 * passes through and each invalid byte becomes U+FFFD, so the output is
 * always valid JSON. */
#define JSON_MAX_DEPTH 16
struct json_writer {
  FILE *out;
  int depth;
  bool has_items[JSON_MAX_DEPTH];  /* a comma is due before the next item */
  bool after_key;
};

void json_init(struct json_writer *w, FILE *out);
void json_begin_object(struct json_writer *w);
void json_end_object(struct json_writer *w);
void json_begin_array(struct json_writer *w);
void json_end_array(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_string(struct json_writer *w, const char *s);  /* NULL -> null */
void json_uint(struct json_writer *w, uint64_t v);
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);
/* Ends the document with a newline. */
void json_finish(struct json_writer *w);

/* key + value in one call. */
void json_member_string(struct json_writer *w, const char *key, const char *s);
void json_member_uint(struct json_writer *w, const char *key, uint64_t v);
void json_member_bool(struct json_writer *w, const char *key, bool v);
void json_member_null(struct json_writer *w, const char *key);

/* progress.c -------------------------------------------------------- */

/* A one-line progress bar on stderr: bar, percentage, rate, time left.
 * It draws only when enabled and stderr is a terminal; it also carries the
 * cancel flag set by SIGINT, so long operations stop cleanly. */
struct progress {
  bool draw;
  uint64_t bytes_total;   /* scale for the rate: the work in bytes */
  double start;
  double last_draw;
  bool drawn;
};

void progress_init(struct progress *p, bool wanted, uint64_t bytes_total);
/* A vhd_progress_fn: opaque is the struct progress. Returns non-zero
 * (cancel) once SIGINT arrived. */
int progress_update(void *opaque, uint64_t done, uint64_t total);
/* Draw the final state (when complete) and end the line. */
void progress_finish(struct progress *p, bool complete);

/* Catch SIGINT/SIGTERM into a flag that progress_update() turns into a
 * cancel, so an interrupted convert can clean up after itself. */
void install_interrupt_handler(void);
bool interrupted(void);

#endif
