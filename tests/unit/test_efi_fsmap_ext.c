/* SPDX-License-Identifier: BSD-3-Clause */
/* The ext2/3/4 module of the UEFI loader's extent mapper
 * (efi-loader/fsmap/fsmap_ext*.c) on the host.
 *
 * Images are made by the real tools, without root: mkfs.ext2/3/4 -d for
 * the content (sparse source files keep their holes), debugfs -w for
 * fragmentation (files written after others were removed), unwritten
 * extents (fallocate) and a size past 4 GiB, e2fsck -D to hash a large
 * directory. Oracles, both independent of the mapper: the bytes read
 * through the extents (zeros for holes and unwritten extents) equal the
 * source file, and the volume block of every logical block, and whether
 * it is unwritten, equals what debugfs reports (dump_extents for extent
 * trees, stat's BLOCKS list for block maps). Hostile images, made by
 * patching fields of real ones, must fail with a message naming the
 * problem.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsmap_testutil.h"

static void make_workdir(void) { make_workdir_named("efi-fsmap-ext"); }

TestSuite(efi_fsmap_ext, .init = make_workdir, .fini = remove_workdir, .timeout = 60);

static char *path_in_workdir(const char *name)
{
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  return path;
}

/* A sparse file of `blocks` blocks where every `stride`-th block holds
 * data; returns its content (zeros in the holes). */
static uint8_t *write_sparse(const char *name, size_t bs, size_t blocks, size_t stride,
                             size_t tail_cut, unsigned seed)
{
  size_t size = blocks * bs - tail_cut;
  uint8_t *all = calloc(1, size);
  uint8_t *data = pattern(size, seed);
  for (size_t b = 0; b < blocks; b += stride) {
    size_t n = b + 1 == blocks ? bs - tail_cut : bs;
    memcpy(all + b * bs, data + b * bs, n);
  }
  free(data);
  int fd = open(path_in_workdir(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cr_assert_geq(fd, 0);
  for (size_t b = 0; b < blocks; b += stride) {
    size_t n = b + 1 == blocks ? bs - tail_cut : bs;
    cr_assert_eq(pwrite(fd, all + b * bs, n, (off_t)(b * bs)), (ssize_t)n);
  }
  cr_assert_eq(ftruncate(fd, (off_t)size), 0);
  close(fd);
  return all;
}

/* Mounts the whole of image, which must be of the given kind. */
static void mount_kind(struct mounted *m, const char *image, enum fsmap_kind kind)
{
  mount_image(m, image, 0, 0);
  cr_assert_eq(m->vol.kind, kind, "%s mounted as %s", image, fsmap_kind_name(m->vol.kind));
}

/* Per logical block: the volume block (0: hole) and whether unwritten. */
struct block_map {
  size_t n;
  uint64_t *pblk;
  bool *unwritten;
};

static struct block_map block_map_new(size_t n)
{
  struct block_map b = {n, calloc(n ? n : 1, sizeof(uint64_t)), calloc(n ? n : 1, 1)};
  return b;
}

static void block_map_free(struct block_map *b)
{
  free(b->pblk);
  free(b->unwritten);
}

/* debugfs's view of an extent-mapped file: the leaves of dump_extents.
 * Returns the tree's depth. */
static unsigned debugfs_extents(const char *image, const char *path, struct block_map *b)
{
  char *out = run(0, "debugfs -R 'dump_extents -l \"%s\"' %s", path, image);
  unsigned depth = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    unsigned lvl, d;
    unsigned long long l0, l1, p0, p1, len;
    char flags[32] = "";
    int k = sscanf(line, " %u/ %u %*u/ %*u %llu - %llu %llu - %llu %llu %31s", &lvl, &d, &l0,
                   &l1, &p0, &p1, &len, flags);
    if (k < 7)
      continue;
    depth = d;
    for (unsigned long long i = 0; i < len && l0 + i < b->n; i++) {
      b->pblk[l0 + i] = p0 + i;
      b->unwritten[l0 + i] = strcmp(flags, "Uninit") == 0;
    }
  }
  free(out);
  return depth;
}

/* debugfs's view of a block-mapped file: stat's "(a-b):c-d" runs; the
 * (IND)/(DIND)/(TIND) metadata blocks are not file blocks. */
static void debugfs_block_list(const char *image, const char *path, struct block_map *b)
{
  char *out = run(0, "debugfs -R 'stat \"%s\"' %s", path, image);
  char *p = strstr(out, "BLOCKS:");
  cr_assert_not_null(p, "no BLOCKS in debugfs stat %s", path);
  while ((p = strchr(p, '(')) != NULL) {
    unsigned long long l0, l1, p0, p1;
    int used = 0;
    if (sscanf(p, "(%llu-%llu):%llu-%llu%n", &l0, &l1, &p0, &p1, &used) == 4 && used) {
    } else if (sscanf(p, "(%llu):%llu%n", &l0, &p0, &used) == 2 && used) {
      l1 = l0;
    } else {
      p++;
      continue;
    }
    for (unsigned long long i = l0; i <= l1 && i < b->n; i++)
      b->pblk[i] = p0 + (i - l0);
    p += used;
  }
  free(out);
}

static struct fsmap_file lookup(struct mounted *m, const char *path)
{
  struct fsmap_file f;
  int r = fsmap_lookup(&m->vol, path, &f);
  cr_assert_eq(r, 0, "lookup %s: %d %s", path, r, m->vol.error);
  return f;
}

static struct fsmap_extents map_file(struct mounted *m, const struct fsmap_file *f)
{
  struct fsmap_extents e;
  memset(&e, 0, sizeof e);
  int r = fsmap_map(&m->vol, f, &e);
  cr_assert_eq(r, 0, "map inode %llu: %d %s", (unsigned long long)f->id, r, m->vol.error);
  return e;
}

/* Maps path and checks the extents: adjacent, covering whole blocks up to
 * the size, bytes equal to expect (zeros where the file has no data), the
 * same blocks and unwritten ranges as debugfs. Returns the extents. */
static struct fsmap_extents check_file(struct mounted *m, const char *image, const char *path,
                                       const uint8_t *expect, size_t size, bool extents)
{
  struct fsmap_file f = lookup(m, path);
  cr_assert(!f.directory, "%s is a directory", path);
  cr_assert_eq(f.size, size, "%s: size %llu, expected %zu", path, (unsigned long long)f.size,
               size);
  cr_assert_eq(f.valid_size, f.size);
  struct fsmap_extents e = map_file(m, &f);
  uint64_t bs = m->vol.cluster_size;
  cr_assert_eq(e.mapped, (size + bs - 1) / bs * bs, "%s: mapped %llu bytes for %zu", path,
               (unsigned long long)e.mapped, size);

  struct block_map mine = block_map_new((size_t)(e.mapped / bs));
  uint8_t *got = malloc(e.mapped ? e.mapped : 1);
  uint64_t at = 0;
  for (size_t i = 0; i < e.count; i++) {
    const struct fsmap_extent *x = &e.v[i];
    cr_assert_eq(x->file_offset, at, "%s: extents must be adjacent in the file", path);
    cr_assert(x->length > 0 && x->length % bs == 0 && x->volume_offset % bs == 0);
    at += x->length;
    if (x->state == FSMAP_HOLE) {
      memset(got + x->file_offset, 0, x->length);
      continue;
    }
    cr_assert(x->volume_offset + x->length <= m->vol.size, "%s: extent past the volume", path);
    if (x->state == FSMAP_UNWRITTEN)
      memset(got + x->file_offset, 0, x->length);
    else
      cr_assert_eq(read_cb(&m->vf, x->volume_offset, got + x->file_offset, x->length), 0);
    for (uint64_t k = 0; k < x->length / bs; k++) {
      mine.pblk[x->file_offset / bs + k] = x->volume_offset / bs + k;
      mine.unwritten[x->file_offset / bs + k] = x->state == FSMAP_UNWRITTEN;
    }
  }
  cr_assert_eq(at, e.mapped);
  cr_assert(memcmp(got, expect, size) == 0, "%s: bytes read through the extents differ from "
            "the file", path);
  free(got);

  /* debugfs wants '/' separators and one between components. */
  char dbg[600] = "/";
  for (const char *c = path; *c; c++) {
    char ch = *c == '\\' ? '/' : *c;
    size_t n = strlen(dbg);
    if (!(ch == '/' && dbg[n - 1] == '/') && n + 1 < sizeof dbg) {
      dbg[n] = ch;
      dbg[n + 1] = '\0';
    }
  }
  struct block_map theirs = block_map_new(mine.n);
  if (extents)
    debugfs_extents(image, dbg, &theirs);
  else
    debugfs_block_list(image, dbg, &theirs);
  for (size_t i = 0; i < mine.n; i++)
    cr_assert(mine.pblk[i] == theirs.pblk[i] && mine.unwritten[i] == theirs.unwritten[i],
              "%s: logical block %zu: mapper says block %llu%s, debugfs %llu%s", path, i,
              (unsigned long long)mine.pblk[i], mine.unwritten[i] ? " (unwritten)" : "",
              (unsigned long long)theirs.pblk[i], theirs.unwritten[i] ? " (unwritten)" : "");
  block_map_free(&mine);
  block_map_free(&theirs);
  return e;
}

static size_t count_state(const struct fsmap_extents *e, enum fsmap_extent_state s)
{
  size_t n = 0;
  for (size_t i = 0; i < e->count; i++)
    n += e->v[i].state == s;
  return n;
}

/* Files every test volume holds: small, nested, a 255-byte name, and a
 * directory of many files (hashed later by e2fsck -D). */
#define MANY 430
static const char *long_name(void)
{
  static char name[256];
  for (int i = 0; i < 255; i++)
    name[i] = (char)('a' + i % 26);
  name[255] = '\0';
  return name;
}

static void populate(void)
{
  sh("mkdir -p src/a/b/c src/many");
  uint8_t *p = pattern(10000, 1);
  write_file("src/small.bin", p, 10000);
  free(p);
  p = pattern(50000, 2);
  write_file("src/a/b/c/deep.bin", p, 50000);
  free(p);
  char name[300];
  snprintf(name, sizeof name, "src/a/b/%s", long_name());
  p = pattern(7000, 3);
  write_file(name, p, 7000);
  free(p);
  for (int i = 0; i < MANY; i++) {
    snprintf(name, sizeof name, "src/many/entry number %04d of a large directory", i);
    p = pattern(100 + (size_t)i, 1000 + (unsigned)i);
    write_file(name, p, 100 + (size_t)i);
    free(p);
  }
}

/* hashed: the large directory must be an htree (not with 64 KiB blocks,
 * where its entries fit one block). */
static void check_common(struct mounted *m, const char *image, bool extents, bool hashed)
{
  uint8_t *p = pattern(10000, 1);
  fsmap_extents_free((struct fsmap_extents[]){check_file(m, image, "/small.bin", p, 10000,
                                                         extents)});
  free(p);
  p = pattern(50000, 2);
  fsmap_extents_free((struct fsmap_extents[]){check_file(m, image, "a\\b/c//deep.bin", p,
                                                         50000, extents)});
  free(p);
  char path[400];
  snprintf(path, sizeof path, "/a/b/%s", long_name());
  p = pattern(7000, 3);
  fsmap_extents_free((struct fsmap_extents[]){check_file(m, image, path, p, 7000, extents)});
  free(p);
  /* ext names are case-sensitive; a name one byte too long is absent. */
  struct fsmap_file f;
  cr_assert_eq(fsmap_lookup(&m->vol, "/SMALL.BIN", &f), -ENOENT);
  snprintf(path, sizeof path, "/a/b/%sa", long_name());
  cr_assert_eq(fsmap_lookup(&m->vol, path, &f), -ENOENT);
  cr_assert_eq(fsmap_lookup(&m->vol, "/small.bin/x", &f), -ENOENT);
  f = lookup(m, "/a/b");
  cr_assert(f.directory);

  /* The large directory is hashed: every name is found by the linear scan. */
  char *out = run(0, "debugfs -R 'htree /many' %s", image);
  cr_assert(!hashed || strstr(out, "Root node dump"), "/many is not hashed:\n%.500s", out);
  free(out);
  for (int i = 0; i < MANY; i += 47) {
    snprintf(path, sizeof path, "many/entry number %04d of a large directory", i);
    p = pattern(100 + (size_t)i, 1000 + (unsigned)i);
    fsmap_extents_free((struct fsmap_extents[]){check_file(m, image, path, p, 100 + (size_t)i,
                                                           extents)});
    free(p);
  }
  cr_assert_eq(fsmap_lookup(&m->vol, "many/entry number 9999 of a large directory", &f),
               -ENOENT);
}

/* Fills the volume with 8 files through debugfs, removes every other one
 * and writes a file larger than any gap, which must come out fragmented. */
static uint8_t *fragment(const char *image, size_t piece, size_t *frag_size)
{
  FILE *cmds = fopen(path_in_workdir("frag.cmds"), "w");
  for (int i = 0; i < 8; i++) {
    char name[32];
    snprintf(name, sizeof name, "fill%d.bin", i);
    uint8_t *p = pattern(piece, 10 + (unsigned)i);
    write_file(name, p, piece);
    free(p);
    fprintf(cmds, "write %s /fill%d.bin\n", path_in_workdir(name), i);
  }
  fprintf(cmds, "rm /fill1.bin\nrm /fill3.bin\nrm /fill5.bin\n");
  *frag_size = piece * 5 / 2 + 333;
  uint8_t *frag = pattern(*frag_size, 99);
  write_file("frag.bin", frag, *frag_size);
  fprintf(cmds, "write %s /frag.bin\n", path_in_workdir("frag.bin"));
  fclose(cmds);
  sh("debugfs -w -f frag.cmds %s", image);
  return frag;
}

static void check_fragmented(struct mounted *m, const char *image, const uint8_t *frag,
                             size_t size, bool extents)
{
  struct fsmap_extents e = check_file(m, image, "/frag.bin", frag, size, extents);
  cr_assert_geq(count_state(&e, FSMAP_DATA), 3, "frag.bin is not fragmented (%zu extents)",
                e.count);
  fsmap_extents_free(&e);
}

/* An ext4 volume: everything above plus a sparse file with a tree of depth
 * >= 2, unwritten extents inside the size and past it, and a size past
 * 4 GiB. */
static void ext4_case(unsigned bs, const char *features, size_t sparse_blocks,
                      enum fsmap_kind kind)
{
  populate();
  uint8_t *sparse = write_sparse("src/sparse.bin", bs, sparse_blocks, 2, 100, 4);
  sh("mkfs.ext4 -q -b %u -O %s -d src vol.img 24M", bs, features);
  size_t frag_size;
  uint8_t *frag = fragment("vol.img", 48 * bs, &frag_size);
  /* Unwritten extents: in holes of the sparse file (within its size) and
   * past its end; a file of one block whose size says 5 GiB. */
  FILE *cmds = fopen(path_in_workdir("prealloc.cmds"), "w");
  fprintf(cmds, "fallocate /sparse.bin 1 9\nfallocate /sparse.bin %zu %zu\n", sparse_blocks - 1,
          sparse_blocks + 20);
  fprintf(cmds, "write %s/src/small.bin /big.bin\nsif /big.bin size 5368709121\n", workdir);
  fclose(cmds);
  sh("debugfs -w -f prealloc.cmds vol.img");
  free(run(1, "e2fsck -fyD vol.img"));
  free(run(0, "e2fsck -fn vol.img"));

  struct mounted m;
  mount_kind(&m, "vol.img", kind);
  cr_assert_eq(m.vol.cluster_size, bs);
  cr_assert_eq(m.vol.root_id, 2);
  check_common(&m, "vol.img", true, true);
  check_fragmented(&m, "vol.img", frag, frag_size, true);

  struct fsmap_extents e = check_file(&m, "vol.img", "/sparse.bin", sparse,
                                      sparse_blocks * bs - 100, true);
  struct block_map dummy = block_map_new(sparse_blocks);
  unsigned depth = debugfs_extents("vol.img", "/sparse.bin", &dummy);
  block_map_free(&dummy);
  cr_assert_geq(depth, 2, "sparse.bin's extent tree has depth %u", depth);
  cr_assert_geq(count_state(&e, FSMAP_UNWRITTEN), 5);
  cr_assert_geq(count_state(&e, FSMAP_HOLE), sparse_blocks / 2 - 10);
  cr_assert_eq(e.v[e.count - 1].state, FSMAP_UNWRITTEN, "the last block was preallocated");
  fsmap_extents_free(&e);

  /* 5 GiB + 1: the high half of i_size counts; all but the first blocks
   * are one hole. */
  struct fsmap_file f = lookup(&m, "big.bin");
  cr_assert_eq(f.size, 5368709121ull);
  e = map_file(&m, &f);
  cr_assert_eq(e.mapped, (5368709121ull + bs - 1) / bs * bs);
  cr_assert_eq(e.v[e.count - 1].state, FSMAP_HOLE);
  cr_assert_eq(e.v[0].state, FSMAP_DATA);
  fsmap_extents_free(&e);
  unmount_image(&m);
  free(sparse);
  free(frag);
}

Test(efi_fsmap_ext, ext4_4k_64bit_metadata_csum)
{
  ext4_case(4096, "64bit,metadata_csum", 1500 * 2, FSMAP_EXT4);
}

/* 64 KiB blocks: the largest ext block size (directory record lengths
 * are folded to fit 16 bits). */
Test(efi_fsmap_ext, ext4_64k_blocks)
{
  populate();
  const size_t bs = 65536;
  uint8_t *sparse = write_sparse("src/sparse.bin", bs, 21, 3, 5, 6);
  sh("mkfs.ext4 -F -q -b %zu -d src vol.img 96M", bs);   /* -F: blocks > page size */
  sh("debugfs -w -R 'fallocate /sparse.bin 1 2' vol.img");
  struct mounted m;
  mount_kind(&m, "vol.img", FSMAP_EXT4);
  cr_assert_eq(m.vol.cluster_size, bs);
  check_common(&m, "vol.img", true, false);
  struct fsmap_extents e = check_file(&m, "vol.img", "sparse.bin", sparse, 21 * bs - 5, true);
  cr_assert_eq(count_state(&e, FSMAP_UNWRITTEN), 1);
  fsmap_extents_free(&e);
  unmount_image(&m);
  free(sparse);
}

Test(efi_fsmap_ext, ext4_1k_32bit_descriptors)
{
  ext4_case(1024, "^64bit,^metadata_csum", 400 * 2, FSMAP_EXT4);
}

/* meta_bg places each meta-group's descriptor block in its first group:
 * few inodes per group push the last files into groups past the first
 * meta-group. */
Test(efi_fsmap_ext, ext4_meta_bg)
{
  populate();
  sh("mkfs.ext4 -q -b 1024 -O meta_bg,^resize_inode,64bit -N 500 -d src vol.img 160M");
  free(run(1, "e2fsck -fyD vol.img"));
  char *out = run(0, "debugfs -R 'imap \"/many/entry number %04d of a large directory\"' "
                  "vol.img", MANY - 1);
  unsigned group = 0;
  const char *g = strstr(out, "block group ");
  cr_assert(g && sscanf(g, "block group %u", &group) == 1, "%s", out);
  cr_assert_geq(group, 16, "the last file is in group %u, inside the first meta-group", group);
  free(out);
  struct mounted m;
  mount_kind(&m, "vol.img", FSMAP_EXT4);
  check_common(&m, "vol.img", true, true);
  char path[200];
  snprintf(path, sizeof path, "many/entry number %04d of a large directory", MANY - 1);
  uint8_t *p = pattern(100 + MANY - 1, 1000 + MANY - 1);
  fsmap_extents_free((struct fsmap_extents[]){check_file(&m, "vol.img", path, p,
                                                         100 + MANY - 1, true)});
  free(p);
  unmount_image(&m);
}

/* Block maps: direct, single, double and triple indirect blocks, with
 * holes at every level. */
static void block_map_case(const char *mkfs, unsigned bs, enum fsmap_kind kind)
{
  populate();
  /* Data in the direct range, the single and double indirect ranges and
   * (1 KiB blocks) the triple one; holes between. */
  size_t per = bs / 4, blocks = bs == 1024 ? 12 + per + per * per + 40 : 12 + per + 700;
  size_t size = blocks * bs - 7;
  uint8_t *all = calloc(1, size), *data = pattern(size, 5);
  size_t runs[][2] = {{0, 20}, {12 + per - 3, 12 + per + 5}, {12 + per + 300, 12 + per + 302},
                      {blocks - 30, blocks}};
  int fd = open(path_in_workdir("src/ind.bin"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (size_t r = 0; r < 4; r++) {
    size_t off = runs[r][0] * bs, len = runs[r][1] * bs - off;
    if (off + len > size)
      len = size - off;
    memcpy(all + off, data + off, len);
    cr_assert_eq(pwrite(fd, all + off, len, (off_t)off), (ssize_t)len);
  }
  cr_assert_eq(ftruncate(fd, (off_t)size), 0);
  close(fd);
  free(data);
  sh("%s -q -b %u -d src vol.img 24M", mkfs, bs);
  size_t frag_size;
  uint8_t *frag = fragment("vol.img", 48 * bs, &frag_size);
  free(run(1, "e2fsck -fyD vol.img"));

  struct mounted m;
  mount_kind(&m, "vol.img", kind);
  check_common(&m, "vol.img", false, true);
  check_fragmented(&m, "vol.img", frag, frag_size, false);
  char *out = run(0, "debugfs -R 'stat /ind.bin' vol.img");
  cr_assert_not_null(strstr(out, bs == 1024 ? "(TIND)" : "(DIND)"), "%.2000s", out);
  cr_assert_null(strstr(out, "EXTENTS"));
  free(out);
  struct fsmap_extents e = check_file(&m, "vol.img", "/ind.bin", all, size, false);
  cr_assert_geq(count_state(&e, FSMAP_HOLE), 3);
  fsmap_extents_free(&e);
  unmount_image(&m);
  free(all);
  free(frag);
}

Test(efi_fsmap_ext, ext2_block_map_1k)
{
  block_map_case("mkfs.ext2", 1024, FSMAP_EXT2);
}

Test(efi_fsmap_ext, ext3_block_map_4k)
{
  block_map_case("mkfs.ext3", 4096, FSMAP_EXT3);
}

Test(efi_fsmap_ext, ext4_without_extents)
{
  block_map_case("mkfs.ext4 -O ^extents,^64bit", 1024, FSMAP_EXT4);
}

/* --- Hostile volumes: real images with one field patched. ------------- */

/* Writes value as a little-endian field of bytes bytes at off. */
static void patch_field(const char *image, uint64_t off, uint64_t value, unsigned bytes)
{
  uint8_t b[8];
  for (unsigned i = 0; i < bytes; i++)
    b[i] = (uint8_t)(value >> (8 * i));
  patch(image, off, b, bytes);
}

static uint64_t get_field(const char *image, uint64_t off, unsigned bytes)
{
  uint8_t b[8] = {0};
  int fd = open(path_in_workdir(image), O_RDONLY);
  cr_assert_eq(pread(fd, b, bytes, (off_t)off), (ssize_t)bytes);
  close(fd);
  uint64_t v = 0;
  for (unsigned i = 0; i < bytes; i++)
    v |= (uint64_t)b[i] << (8 * i);
  return v;
}

/* Byte offset of path's inode, from debugfs imap. */
static uint64_t inode_offset(const char *image, const char *path, unsigned bs)
{
  char *out = run(0, "debugfs -R 'imap %s' %s", path, image);
  unsigned long long blk, off;
  const char *p = strstr(out, "located at block");
  cr_assert(p && sscanf(p, "located at block %llu, offset 0x%llx", &blk, &off) == 2, "%s",
            out);
  free(out);
  return blk * bs + off;
}

#define EXT_SB 1024
#define HOSTILE_BS 1024

/* base.img: one.bin (one extent in the inode), deep.bin (a tree of depth
 * 2), d/x. */
static void hostile_base(void)
{
  sh("mkdir -p src/d");
  uint8_t *p = pattern(3000, 7);
  write_file("src/one.bin", p, 3000);
  write_file("src/d/x", p, 100);
  free(p);
  free(write_sparse("src/deep.bin", HOSTILE_BS, 400 * 2, 2, 0, 8));
  sh("mkfs.ext4 -q -b %d -O ^metadata_csum -d src base.img 8M", HOSTILE_BS);
}

/* Copies base.img to t.img and applies a patch there. */
static void fresh_copy(void) { sh("cp base.img t.img"); }

static void expect_mount_error(int err, const char *needle, uint64_t size)
{
  struct mounted m;
  int r = try_mount(&m, "t.img", 0, size);
  cr_assert_eq(r, -err, "mount: %d (%s), expected %d", r, m.vol.error, -err);
  cr_assert_not_null(strstr(m.vol.error, needle), "message \"%s\" lacks \"%s\"", m.vol.error,
                     needle);
  cr_assert_null(m.vol.priv, "state left behind after a failed mount");
  close(m.vf.fd);
}

/* Looks path up and maps it: the first failure must be err with needle in
 * its message. */
static void expect_file_error(const char *path, int err, const char *needle)
{
  struct mounted m;
  int r = try_mount(&m, "t.img", 0, 0);
  cr_assert_eq(r, 0, "mount t.img: %d %s", r, m.vol.error);
  struct fsmap_file f;
  r = fsmap_lookup(&m.vol, path, &f);
  struct fsmap_extents e;
  memset(&e, 0, sizeof e);
  if (r == 0)
    r = fsmap_map(&m.vol, &f, &e);
  cr_assert_eq(r, -err, "%s: %d (%s), expected %d", path, r, m.vol.error, -err);
  cr_assert_not_null(strstr(m.vol.error, needle), "message \"%s\" lacks \"%s\"", m.vol.error,
                     needle);
  fsmap_extents_free(&e);
  unmount_image(&m);
}

Test(efi_fsmap_ext, hostile_superblock)
{
  hostile_base();
  /* Feature words are patched by adding a bit to what mkfs set. */
  struct {
    uint64_t off;
    uint64_t value;
    unsigned bytes;
    bool add;
    int err;
    const char *needle;
  } cases[] = {
    {EXT_SB + 0x28, 0, 4, false, EINVAL, "s_inodes_per_group"},
    {EXT_SB + 0x20, 0, 4, false, EINVAL, "s_blocks_per_group"},
    {EXT_SB + 0x14, 5, 4, false, EINVAL, "s_first_data_block"},
    {EXT_SB + 0x58, 100, 2, false, EINVAL, "s_inode_size"},
    {EXT_SB + 0x00, 0xffffffff, 4, false, EINVAL, "s_inodes_count"},
    {EXT_SB + 0x04, 0xfffffff, 4, false, EINVAL, "larger than its partition"},
    {EXT_SB + 0x60, 0x80000000, 4, true, EINVAL, "unknown incompatible feature bit 0x80000000"},
    {EXT_SB + 0x60, 0x4, 4, true, EINVAL, "e2fsck"},
    {EXT_SB + 0x60, 0x8, 4, true, EINVAL, "journal_dev"},
    {EXT_SB + 0x64, 0x200, 4, true, EINVAL, "bigalloc"},
    {EXT_SB + 0x64, 0x100000, 4, true, EINVAL, "unknown read-only-compatible feature bit"},
    /* Group 0's inode table (bg_inode_table_lo) past the volume: the root
     * inode cannot be read. */
    {2 * HOSTILE_BS + 0x08, 0x7fffffff, 4, false, EINVAL, "bg_inode_table"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fresh_copy();
    uint64_t v = cases[i].value;
    if (cases[i].add)
      v |= get_field("base.img", cases[i].off, cases[i].bytes);
    patch_field("t.img", cases[i].off, v, cases[i].bytes);
    expect_mount_error(cases[i].err, cases[i].needle, 0);
  }
  /* A volume cut short. */
  fresh_copy();
  expect_mount_error(EINVAL, "larger than its partition", 4 << 20);
  /* Not ext at all: no message, so that the next module may try. */
  fresh_copy();
  patch_field("t.img", EXT_SB + 0x38, 0, 2);
  struct mounted m;
  cr_assert_eq(try_mount(&m, "t.img", 0, 0), -ENOTSUP);
  cr_assert_str_empty(m.vol.error);
  close(m.vf.fd);
}

Test(efi_fsmap_ext, hostile_extent_tree)
{
  hostile_base();
  uint64_t one = inode_offset("base.img", "/one.bin", HOSTILE_BS);
  uint64_t deep = inode_offset("base.img", "/deep.bin", HOSTILE_BS);
  cr_assert_eq(get_field("base.img", one + 0x28, 2), 0xf30a);
  cr_assert_eq(get_field("base.img", one + 0x28 + 6, 2), 0, "one.bin's tree has depth > 0");
  cr_assert_eq(get_field("base.img", deep + 0x28 + 6, 2), 2, "deep.bin's tree depth");
  /* The level-1 index node under deep.bin's root, and its first two
   * entries (ei_block, ei_leaf_lo, ei_leaf_hi). */
  uint64_t node = get_field("base.img", deep + 0x28 + 12 + 4, 4) * HOSTILE_BS;
  cr_assert_eq(get_field("base.img", node, 2), 0xf30a);
  cr_assert_geq(get_field("base.img", node + 2, 2), 2);
  uint64_t leaf0 = get_field("base.img", node + 12 + 4, 4);

  /* An extent that points past the volume. */
  fresh_copy();
  patch_field("t.img", one + 0x28 + 12 + 8, 0x00ffffff, 4);
  expect_file_error("/one.bin", EINVAL, "outside the volume");
  /* A bad root header magic; a bad magic in a tree block. */
  fresh_copy();
  patch_field("t.img", one + 0x28, 0xf30b, 2);
  expect_file_error("/one.bin", EINVAL, "eh_magic");
  fresh_copy();
  patch_field("t.img", leaf0 * HOSTILE_BS, 0x1234, 2);
  expect_file_error("/deep.bin", EINVAL, "eh_magic");
  /* More entries than eh_max. */
  fresh_copy();
  patch_field("t.img", leaf0 * HOSTILE_BS + 2, 0xffff, 2);
  expect_file_error("/deep.bin", EINVAL, "eh_max");
  /* A loop: the index node names itself as its first child. */
  fresh_copy();
  patch_field("t.img", node + 12 + 4, node / HOSTILE_BS, 4);
  expect_file_error("/deep.bin", EINVAL, "eh_depth");
  /* Two index entries share a child: its extents would be used twice. */
  fresh_copy();
  patch_field("t.img", node + 24 + 4, leaf0, 4);
  expect_file_error("/deep.bin", EINVAL, "index range");
  /* Index entries out of order. */
  fresh_copy();
  patch_field("t.img", node + 24, 0, 4);
  expect_file_error("/deep.bin", EINVAL, "not sorted");
  /* A size past the largest ext file. */
  fresh_copy();
  patch_field("t.img", one + 0x6c, 0xffffffff, 4);
  expect_file_error("/one.bin", EINVAL, "i_size");
}

Test(efi_fsmap_ext, hostile_block_map)
{
  uint8_t *p = pattern(300 * HOSTILE_BS, 9);
  sh("mkdir src");
  write_file("src/ind.bin", p, 300 * HOSTILE_BS);
  free(p);
  sh("mkfs.ext2 -q -b %d -d src base.img 8M", HOSTILE_BS);
  uint64_t ino = inode_offset("base.img", "/ind.bin", HOSTILE_BS);
  uint64_t ind = get_field("base.img", ino + 0x28 + 12 * 4, 4);
  cr_assert_gt(ind, 0);
  fresh_copy();
  patch_field("t.img", ino + 0x28, 0x00ffffff, 4);   /* i_block[0] */
  expect_file_error("/ind.bin", EINVAL, "i_block[0]");
  fresh_copy();
  patch_field("t.img", ind * HOSTILE_BS + 8, 0x00ffffff, 4);   /* logical block 14 */
  expect_file_error("/ind.bin", EINVAL, "logical block 14");
  fresh_copy();
  patch_field("t.img", ino + 0x28 + 12 * 4, 0x00ffffff, 4);   /* the indirect block itself */
  expect_file_error("/ind.bin", EINVAL, "i_block[12]");
  /* Two pointers to one block: writes through one would change the other. */
  fresh_copy();
  patch_field("t.img", ino + 0x28 + 4, get_field("base.img", ino + 0x28 + 8, 4), 4);
  expect_file_error("/ind.bin", EINVAL, "twice");
}

Test(efi_fsmap_ext, hostile_directory)
{
  hostile_base();
  char *out = run(0, "debugfs -R 'blocks /d' base.img 2>/dev/null");
  uint64_t dblk = strtoull(out, NULL, 10);
  free(out);
  cr_assert_gt(dblk, 0);
  uint64_t d = dblk * HOSTILE_BS;
  /* "." then ".." then x: the third entry starts at 12 + 12. */
  cr_assert_eq(get_field("base.img", d + 24 + 6, 1), 1);
  cr_assert_eq(get_field("base.img", d + 24 + 8, 1), 'x');

  fresh_copy();
  patch_field("t.img", d + 4, 3, 2);   /* "."'s rec_len */
  expect_file_error("/d/x", EINVAL, "rec_len");
  fresh_copy();
  patch_field("t.img", d + 12 + 4, 5000, 2);   /* ".."'s rec_len runs past the block */
  expect_file_error("/d/x", EINVAL, "rec_len");
  fresh_copy();
  patch_field("t.img", d + 24, 0xfffffff0, 4);   /* x's inode number */
  expect_file_error("/d/x", EINVAL, "s_inodes_count");
  fresh_copy();
  patch_field("t.img", d + 24, 20, 4);   /* a free inode */
  expect_file_error("/d/x", EINVAL, "not in use");
}

/* inline_data: small directories keep their entries in the inode, in
 * i_block and in the in-inode attribute system.data. mkfs -d fills only
 * i_block (it moves a larger directory to a block), so an entry is put
 * into system.data with debugfs ea_set; e2fsck -fn and debugfs ls accept
 * the result. */
Test(efi_fsmap_ext, ext4_inline_directories)
{
  sh("mkdir -p src/sub/deeper");
  uint8_t *a = pattern(10000, 21), *b = pattern(5000, 22), *other = pattern(20000, 23);
  write_file("src/sub/a.bin", a, 10000);
  write_file("src/sub/deeper/b.bin", b, 5000);
  write_file("src/other.bin", other, 20000);
  sh("mkfs.ext4 -q -O inline_data -d src vol.img 8M");
  char *out = run(0, "debugfs -R 'stat /other.bin' vol.img");
  unsigned ino = 0;
  cr_assert(sscanf(strstr(out, "Inode:"), "Inode: %u", &ino) == 1);
  free(out);
  /* One entry: inode, rec_len 16, name_len 8, type 1 (file), "img2.bin". */
  uint8_t entry[16] = {(uint8_t)ino, (uint8_t)(ino >> 8), 0, 0, 16, 0, 8, 1};
  memcpy(entry + 8, "img2.bin", 8);
  write_file("entry", entry, sizeof entry);
  FILE *cmds = fopen(path_in_workdir("inline.cmds"), "w");
  fprintf(cmds, "ea_set -f entry /sub system.data\nsif /sub size 76\n"
          "sif /other.bin links_count 2\n");
  fclose(cmds);
  sh("debugfs -w -f inline.cmds vol.img");
  free(run(0, "e2fsck -fn vol.img"));
  out = run(0, "debugfs -R 'ls /sub' vol.img; debugfs -R 'stat /sub' vol.img; "
            "debugfs -R 'stat /sub/deeper' vol.img");
  cr_assert_not_null(strstr(out, "img2.bin"), "%s", out);
  const char *flags = strstr(out, "Flags: ");
  cr_assert(flags && strtoul(flags + 7, NULL, 16) & 0x10000000, "/sub is not inline:\n%s", out);
  flags = strstr(flags + 1, "Flags: ");
  cr_assert(flags && strtoul(flags + 7, NULL, 16) & 0x10000000, "/sub/deeper is not inline");
  free(out);

  struct mounted m;
  mount_kind(&m, "vol.img", FSMAP_EXT4);
  fsmap_extents_free((struct fsmap_extents[]){check_file(&m, "vol.img", "sub/a.bin", a, 10000,
                                                         true)});
  fsmap_extents_free((struct fsmap_extents[]){check_file(&m, "vol.img", "sub/deeper/b.bin",
                                                         b, 5000, true)});
  fsmap_extents_free((struct fsmap_extents[]){check_file(&m, "vol.img", "sub/img2.bin", other,
                                                         20000, true)});
  struct fsmap_file f;
  cr_assert_eq(fsmap_lookup(&m.vol, "sub/img3.bin", &f), -ENOENT);
  unmount_image(&m);
  free(a);
  free(b);
  free(other);
}

/* casefold directories match names after Unicode folding; the loader
 * matches exactly and says why a name in another case is not found. */
Test(efi_fsmap_ext, casefold_directory)
{
  sh("mkdir -p src/cf && echo data > src/cf/Image.vhdx");
  sh("mkfs.ext4 -q -O casefold -d src vol.img 8M");
  sh("debugfs -w -R 'sif /cf flags 0x40080000' vol.img");
  struct mounted m;
  mount_kind(&m, "vol.img", FSMAP_EXT4);
  struct fsmap_file f;
  cr_assert_eq(fsmap_lookup(&m.vol, "cf/Image.vhdx", &f), 0, "%s", m.vol.error);
  cr_assert_eq(fsmap_lookup(&m.vol, "cf/image.VHDX", &f), -ENOENT);
  cr_assert_not_null(strstr(m.vol.error, "casefold"), "%s", m.vol.error);
  unmount_image(&m);
}

/* Inodes the loader cannot use as image files. */
Test(efi_fsmap_ext, refused_inodes)
{
  sh("mkdir src && echo tiny > src/tiny && ln -s tiny src/link");
  sh("mkfs.ext4 -q -O inline_data -d src t.img 8M");
  expect_file_error("/tiny", ENOTSUP, "inline_data");
  expect_file_error("/link", ENOTSUP, "symbolic link");
  expect_file_error("/tiny/x", ENOENT, "not a directory");
}

/* --- Corruption sweep: random bytes of the metadata changed, thousands
 * of times. Every outcome must be a clean success or an error with a
 * message; a success must still keep the mapper's promises. --------- */

/* The promises of a successful map (fsmap.h). */
static void check_promises(const struct fsmap_volume *vol, const struct fsmap_file *f,
                           const struct fsmap_extents *e)
{
  uint64_t bs = vol->cluster_size, at = 0;
  cr_assert_eq(e->mapped, (f->size + bs - 1) / bs * bs);
  for (size_t i = 0; i < e->count; i++) {
    cr_assert_eq(e->v[i].file_offset, at);
    at += e->v[i].length;
    if (e->v[i].state != FSMAP_HOLE)
      cr_assert(e->v[i].volume_offset + e->v[i].length <= vol->size &&
                e->v[i].volume_offset >= bs);
  }
  cr_assert_eq(at, e->mapped);
}

#define SWEEP_MAX_REGIONS 16

/* Metadata regions of a 1 KiB-block image to corrupt. */
struct regions {
  uint64_t start[SWEEP_MAX_REGIONS], len[SWEEP_MAX_REGIONS];
  size_t n;
};

static void add_region(struct regions *g, uint64_t start, uint64_t len)
{
  cr_assert(g->n < SWEEP_MAX_REGIONS && start > 0);
  g->start[g->n] = start;
  g->len[g->n++] = len;
}

/* The superblock, the descriptors, the inodes of inodes[] and the first
 * block of each of dirs[]. */
static void common_regions(struct regions *g, const char *image, const char *const *inodes,
                           const char *const *dirs)
{
  add_region(g, EXT_SB, 1024);
  add_region(g, 2 * HOSTILE_BS, HOSTILE_BS);
  for (size_t i = 0; inodes[i]; i++)
    add_region(g, inode_offset(image, inodes[i], HOSTILE_BS), 256);
  for (size_t i = 0; dirs[i]; i++) {
    char *out = run(0, "debugfs -R 'blocks %s' %s 2>/dev/null", dirs[i], image);
    add_region(g, strtoull(out, NULL, 10) * HOSTILE_BS, HOSTILE_BS);
    free(out);
  }
}

/* Changes up to three bytes of the regions at a time, 20000 times, and
 * looks up and maps every path (NULL-terminated). */
static void sweep(const char *image, const struct regions *g, const char *const *paths)
{
  struct mem_vol mv;
  mv.data = slurp(image, &mv.size);

  uint32_t x = 2463534242u;
  unsigned mounted = 0, mapped = 0, refused = 0;
  for (int round = 0; round < 20000; round++) {
    uint64_t where[3];
    uint8_t old[3];
    for (int k = 0; k < 3; k++) {   /* up to three bytes at a time */
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      size_t r = x % g->n;
      where[k] = g->start[r] + (x >> 8) % g->len[r];
      old[k] = mv.data[where[k]];
      if (k == 0 || x % 3 == 0)
        mv.data[where[k]] = (uint8_t)(x >> 16);
    }
    struct fsmap_volume vol;
    int r = fsmap_mount(&vol, mem_read, &mv, mv.size);
    if (r == 0) {
      mounted++;
      for (size_t i = 0; paths[i]; i++) {
        struct fsmap_file f;
        struct fsmap_extents e;
        memset(&e, 0, sizeof e);
        r = fsmap_lookup(&vol, paths[i], &f);
        if (r == 0)
          r = fsmap_map(&vol, &f, &e);
        if (r == 0) {
          mapped++;
          check_promises(&vol, &f, &e);
        } else {
          refused += r != -ENOENT;
          cr_assert(vol.error[0], "round %d, %s: error %d without a message", round, paths[i],
                    r);
        }
        fsmap_extents_free(&e);
      }
      fsmap_unmount(&vol);
    } else {
      cr_assert(r == -ENOTSUP || vol.error[0], "round %d: mount error %d without a message",
                round, r);
      cr_assert_null(vol.priv);
    }
    for (int k = 2; k >= 0; k--)
      mv.data[where[k]] = old[k];
  }
  cr_log_info("corruption sweep of %s: %u mounts, %u maps, %u refusals (not ENOENT)", image,
              mounted, mapped, refused);
  cr_assert_gt(mounted, 100);
  cr_assert_gt(refused, 100);
  free(mv.data);
}

Test(efi_fsmap_ext, corruption_sweep_extents)
{
  hostile_base();
  static const char *const paths[] = {"/one.bin", "/deep.bin", "/d/x", "/d", "/nothing", NULL};
  static const char *const inodes[] = {"/", "/one.bin", "/deep.bin", "/d", "/d/x", NULL};
  static const char *const dirs[] = {"/", "/d", NULL};
  struct regions g = {.n = 0};
  common_regions(&g, "base.img", inodes, dirs);
  /* deep.bin's index node and first leaf. */
  uint64_t deep = inode_offset("base.img", "/deep.bin", HOSTILE_BS);
  uint64_t node = get_field("base.img", deep + 0x28 + 12 + 4, 4) * HOSTILE_BS;
  add_region(&g, node, HOSTILE_BS);
  add_region(&g, get_field("base.img", node + 12 + 4, 4) * HOSTILE_BS, HOSTILE_BS);
  sweep("base.img", &g, paths);
}

Test(efi_fsmap_ext, corruption_sweep_block_map)
{
  sh("mkdir -p src/d && echo x > src/d/x");
  /* Blocks in the direct, single and double indirect ranges. */
  free(write_sparse("src/ind.bin", HOSTILE_BS, 12 + 256 + 40, 3, 0, 10));
  sh("mkfs.ext2 -q -b %d -d src base.img 8M", HOSTILE_BS);
  static const char *const paths[] = {"/ind.bin", "/d/x", "/d", "/nothing", NULL};
  static const char *const inodes[] = {"/", "/ind.bin", "/d", "/d/x", NULL};
  static const char *const dirs[] = {"/", "/d", NULL};
  struct regions g = {.n = 0};
  common_regions(&g, "base.img", inodes, dirs);
  uint64_t ino = inode_offset("base.img", "/ind.bin", HOSTILE_BS);
  uint64_t ind = get_field("base.img", ino + 0x28 + 12 * 4, 4);
  uint64_t dind = get_field("base.img", ino + 0x28 + 13 * 4, 4);
  add_region(&g, ind * HOSTILE_BS, HOSTILE_BS);
  add_region(&g, dind * HOSTILE_BS, HOSTILE_BS);
  add_region(&g, get_field("base.img", dind * HOSTILE_BS, 4) * HOSTILE_BS, HOSTILE_BS);
  sweep("base.img", &g, paths);
}
