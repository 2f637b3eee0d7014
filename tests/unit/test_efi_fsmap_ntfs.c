/* SPDX-License-Identifier: BSD-3-Clause */
/* The NTFS module of the UEFI loader's extent mapper (efi-loader/fsmap/
 * fsmap_ntfs*.c) on the host, the same way as test_efi_extents.c: the
 * mapper's sources are compiled in, the volumes are made by the real tools
 * (mkntfs, ntfscp; ntfs-3g through FUSE for directories, fragmentation,
 * compressed and sparse files, skipped with the reason when FUSE cannot
 * mount), and a volume made by Windows is read when ../shared/images is
 * there.
 *
 * Oracles: the bytes read through the extents equal the file (the source
 * or ntfscat), the runs equal what ntfsinfo -v lists, record numbers equal
 * ntfsinfo's. Damaged volumes give an error naming the field, never a
 * crash (run it once under -DVHD_SANITIZE=ON).
 */
#include <time.h>

#include "fsmap_testutil.h"

static void make_workdir(void)
{
  make_workdir_named("efi-ntfs");
}

TestSuite(efi_fsmap_ntfs, .init = make_workdir, .fini = remove_workdir);

/* Mounts vol.img through ntfs-3g on workdir/mnt with extra options, or
 * skips the test saying why (no FUSE in this container, not root). */
static void fuse_mount_or_skip(const char *image, const char *opts)
{
  char cmd[600];
  snprintf(cmd, sizeof cmd, "cd '%s' && mkdir -p mnt && ntfs-3g %s %s mnt >cmd.log 2>&1",
           workdir, opts, image);
  if (system(cmd) != 0)
    cr_skip_test("ntfs-3g cannot mount through FUSE here: %s", last_log());
}

static void fuse_umount(void)
{
  sh("umount mnt");
}

static void mount_ntfs(struct mounted *m, const char *image, uint64_t base, uint64_t size)
{
  mount_image(m, image, base, size);
  cr_assert_eq(m->vol.kind, FSMAP_NTFS);
  cr_assert_str_eq(fsmap_kind_name(m->vol.kind), "NTFS");
}

static struct fsmap_file lookup(struct mounted *m, const char *path)
{
  struct fsmap_file f;
  int r = fsmap_lookup(&m->vol, path, &f);
  cr_assert_eq(r, 0, "lookup %s: %d %s", path, r, m->vol.error);
  return f;
}

/* The unnamed $DATA runs ntfsinfo -v lists for path, as clusters
 * (lcn, count) clipped to the file's size and merged like the mapper's
 * extents; compared with e. */
static void check_against_ntfsinfo(struct mounted *m, const char *image, const char *path,
                                   const struct fsmap_extents *e, uint64_t size)
{
  char *out = sh_output("ntfsinfo -v -F '%s' %s", path, image);
  uint64_t cs = m->vol.cluster_size, need = (size + cs - 1) / cs, have = 0;
  uint64_t lcn[4096], cnt[4096];
  size_t n = 0;
  for (char *p = out; (p = strstr(p, "Dumping attribute $DATA")); ) {
    char *next = strstr(p + 1, "Dumping attribute");
    char *named = strstr(p, "Attribute name:");
    char *runs = strstr(p, "Runlist:");
    p++;
    if ((named && (!next || named < next)) || !runs || (next && runs > next))
      continue;
    /* Lines "VCN LCN length"; a piece after the first starts with an
     * <RL_NOT_MAPPED> line for the VCNs before it. */
    for (char *line = strchr(runs, '\n'); line && have < need; line = strchr(line, '\n')) {
      line++;
      unsigned long long v, l, c;
      char tag[4];
      if (sscanf(line, " 0x%llx <RL_NOT_MAPPED%1[>]", &v, tag) == 2)
        continue;
      if (sscanf(line, " 0x%llx 0x%llx 0x%llx", &v, &l, &c) != 3)
        break;
      if (c > need - have)
        c = need - have;
      if (n && lcn[n - 1] + cnt[n - 1] == l)
        cnt[n - 1] += c;
      else {
        cr_assert_lt(n, 4096);
        lcn[n] = l;
        cnt[n++] = c;
      }
      have += c;
    }
  }
  free(out);
  cr_assert_eq(have, need, "%s: ntfsinfo lists %llu clusters, the file needs %llu", path,
               (unsigned long long)have, (unsigned long long)need);
  cr_assert_eq(n, e->count, "%s: ntfsinfo lists %zu runs, the mapper %zu", path, n, e->count);
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(e->v[i].volume_offset, lcn[i] * cs, "%s: run %zu", path, i);
    cr_assert_eq(e->v[i].length, cnt[i] * cs, "%s: run %zu", path, i);
  }
}

/* Checks that the tools really built what a test needs: the output of
 * cmd contains text. */
static void expect_in_output(const char *cmd, const char *text, const char *why)
{
  char *out = sh_output("%s", cmd);
  cr_assert(strstr(out, text), "%s:\n%s", why, out);
  free(out);
}

/* The MFT record number ntfsinfo gives path. */
static uint64_t ntfsinfo_record(const char *image, const char *path)
{
  char *out = sh_output("ntfsinfo -F '%s' %s | head -1", path, image);
  unsigned long long n;
  cr_assert_eq(sscanf(out, "Dumping Inode %llu", &n), 1, "%s", out);
  free(out);
  return n;
}

/* The $MFT maps like any file; ntfscat applies its fixups, so its runs
 * (from ntfsinfo) are the oracle. */
static size_t check_mft(struct mounted *m, const char *image)
{
  struct fsmap_file f = lookup(m, "/$MFT");
  cr_assert_eq(f.id, 0);
  struct fsmap_extents e;
  memset(&e, 0, sizeof e);
  cr_assert_eq(fsmap_map(&m->vol, &f, &e), 0, "%s", m->vol.error);
  check_against_ntfsinfo(m, image, "/$MFT", &e, f.size);
  cr_log_info("%s: $MFT of %llu bytes in %zu extents", image, (unsigned long long)f.size,
              e.count);
  size_t count = e.count;
  fsmap_extents_free(&e);
  return count;
}

static void expect_map_error(struct mounted *m, const char *path, int err, const char *text)
{
  struct fsmap_file f = lookup(m, path);
  struct fsmap_extents e;
  memset(&e, 0, sizeof e);
  int r = fsmap_map(&m->vol, &f, &e);
  cr_assert_eq(r, err, "map %s: %d (%s), expected %d", path, r, m->vol.error, err);
  cr_assert(strstr(m->vol.error, text), "%s: \"%s\" lacks \"%s\"", path, m->vol.error, text);
  fsmap_extents_free(&e);
}

static void expect_lookup_error(struct mounted *m, const char *path, int err, const char *text)
{
  struct fsmap_file f;
  int r = fsmap_lookup(&m->vol, path, &f);
  cr_assert_eq(r, err, "lookup %s: %d (%s), expected %d", path, r, m->vol.error, err);
  cr_assert(strstr(m->vol.error, text), "%s: \"%s\" lacks \"%s\"", path, m->vol.error, text);
}

/* A 255-character name (the longest NTFS allows). */
static const char *long_name(void)
{
  static char name[256];
  for (int i = 0; i < 255; i++)
    name[i] = (char)("Long name, 255 characters "[i % 26]);
  name[255] = '\0';
  return name;
}

/* Files ntfscp can make (no FUSE): a multi-cluster file with the longest
 * name in the root, a resident one, an empty one. */
static void plain_case(unsigned cluster, unsigned sector, unsigned mib)
{
  sh("truncate -s %uM vol.img && mkntfs -F -q -f -c %u -s %u vol.img", mib, cluster, sector);
  size_t big = (size_t)cluster * 5 + 4321, tiny = 100;
  if (big < 300000)
    big = 300000 + 17;
  uint8_t *b = pattern(big, 1), *t = pattern(tiny, 2);
  write_file("big.bin", b, big);
  write_file("tiny.bin", t, tiny);
  write_file("empty.bin", t, 0);
  sh("ntfscp vol.img big.bin '/%s' && ntfscp vol.img tiny.bin /tiny.txt && "
     "ntfscp vol.img empty.bin /empty", long_name());

  struct mounted m;
  mount_ntfs(&m, "vol.img", 0, 0);
  cr_assert_eq(m.vol.cluster_size, cluster);
  cr_assert_eq(m.vol.sector_size, sector);
  char path[300], upper[300];
  snprintf(path, sizeof path, "/%s", long_name());
  for (size_t i = 0; path[i]; i++)   /* lookups ignore ASCII case */
    upper[i] = (char)(path[i] >= 'a' && path[i] <= 'z' ? path[i] - 32 : path[i]);
  upper[strlen(path)] = '\0';
  struct fsmap_extents e = map_and_compare(&m, upper, b, big);
  check_against_ntfsinfo(&m, "vol.img", path, &e, big);
  cr_assert_eq(lookup(&m, path).id, ntfsinfo_record("vol.img", path));
  cr_assert_eq(lookup(&m, path).valid_size, big, "valid data length = size (ntfscp)");
  fsmap_extents_free(&e);

  expect_map_error(&m, "/tiny.txt", -ENOTSUP, "resident file: too small to be an image");
  e = map_and_compare(&m, "/EMPTY", t, 0);
  cr_assert_eq(e.count, 0);
  fsmap_extents_free(&e);

  struct fsmap_file f;
  cr_assert(lookup(&m, "/").directory);
  cr_assert_eq(fsmap_lookup(&m.vol, "/absent.vhd", &f), -ENOENT);
  cr_assert(strstr(m.vol.error, "absent.vhd not found"), "%s", m.vol.error);
  cr_assert_eq(fsmap_lookup(&m.vol, "/tiny.txt/x", &f), -ENOENT);
  cr_assert(strstr(m.vol.error, "not a directory"), "%s", m.vol.error);
  check_mft(&m, "vol.img");
  unmount_image(&m);
  free(b);
  free(t);
}

Test(efi_fsmap_ntfs, plain_4k_clusters) { plain_case(4096, 512, 32); }
Test(efi_fsmap_ntfs, plain_512_clusters) { plain_case(512, 512, 16); }
Test(efi_fsmap_ntfs, plain_64k_clusters) { plain_case(65536, 512, 64); }
/* Sectors per cluster code 0xF8: 256 sectors. */
Test(efi_fsmap_ntfs, plain_128k_clusters) { plain_case(131072, 512, 96); }
/* 4 KiB records whose update sequence still protects 512-byte strides. */
Test(efi_fsmap_ntfs, plain_4k_sectors) { plain_case(4096, 4096, 32); }


/* Through ntfs-3g on a 24 MiB volume of 512-byte clusters: a nested
 * directory, a compressed and a sparse file, a large directory (2000 or
 * 4000 names), and a filler that takes the rest of the space. frag.bin is
 * created empty now and free MFT records are left for its extension
 * records: on a full volume neither the root index nor the $MFT can grow
 * (ntfs-3g then fails with ENOSPC although small holes are free). */
static const char tree_script[] =
    "import os, sys\n"
    "mnt = sys.argv[1]\n"
    "def put(path, data):\n"
    "    with open(os.path.join(mnt, path), 'wb') as f: f.write(data)\n"
    "os.makedirs(os.path.join(mnt, 'Images and more/level two/level three'))\n"
    "put('Images and more/level two/level three/A rather long file name, with commas.vhd',\n"
    "    open('nested.bin', 'rb').read())\n"
    "os.mkdir(os.path.join(mnt, 'comp'))\n"
    "os.setxattr(os.path.join(mnt, 'comp'), 'system.ntfs_attrib_be', bytes([0, 0, 8, 0]))\n"
    "put('comp/c.bin', b'compress me ' * 20000)\n"
    "with open(os.path.join(mnt, 'sparse.bin'), 'wb') as f:\n"
    "    f.seek(1 << 20); f.write(b'x' * 8192)\n"
    "os.mkdir(os.path.join(mnt, 'late'))\n"
    "os.mkdir(os.path.join(mnt, 'fill'))\n"
    "for i in range(int(sys.argv[2])): put('fill/f%04d' % i, bytes([i % 251]) * 4096)\n"
    "put('frag.bin', b'')\n"
    "for i in range(64): put('spare%d' % i, b'')\n"
    "for i in range(64): os.unlink(os.path.join(mnt, 'spare%d' % i))\n"
    "try:\n"
    "    with open(os.path.join(mnt, 'filler'), 'wb') as f:\n"
    "        while True: f.write(b'\\1' * 65536); f.flush()\n"
    "except OSError: pass\n";

/* Removes the names listed in delete.txt and writes frag.bin into the
 * holes they leave, 4 KiB at a time (one large write fails with ENOSPC on
 * a volume of small holes); then empty files, whose records make the
 * $MFT grow into the remaining holes. */
static const char frag_script[] =
    "import os, sys\n"
    "mnt = sys.argv[1]\n"
    "for name in open('delete.txt').read().split():\n"
    "    os.unlink(os.path.join(mnt, 'fill', name))\n"
    "data = open('frag.bin', 'rb').read()\n"
    "with open(os.path.join(mnt, 'frag.bin'), 'wb') as f:\n"
    "    for at in range(0, len(data), 4096): f.write(data[at:at + 4096]); f.flush()\n"
    "for i in range(int(sys.argv[2])):\n"
    "    open(os.path.join(mnt, 'late', 'l%04d' % i), 'wb').close()\n";

#define NESTED "/Images and more/level two/level three/A rather long file name, with commas.vhd"
#define NESTED_SIZE 200001u
#define FRAG_SIZE (900u * 1024 + 333)
#define FILL_FILES_MAX 4000

struct placed {
  uint64_t offset;
  unsigned index;
};

static int by_offset(const void *a, const void *b)
{
  const struct placed *x = a, *y = b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The fill files sorted by where they lie, every other one to be removed:
 * ntfs-3g scatters consecutive small files over several zones, so
 * removing every other by name can leave large holes. The mapper only
 * picks the names here; the checks use ntfsinfo. */
static void choose_holes(unsigned files)
{
  struct mounted m;
  mount_ntfs(&m, "vol.img", 0, 0);
  static struct placed p[FILL_FILES_MAX];
  cr_assert_leq(files, FILL_FILES_MAX);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (unsigned i = 0; i < files; i++) {
    char path[32];
    snprintf(path, sizeof path, "/fill/f%04u", i);
    struct fsmap_file f = lookup(&m, path);
    struct fsmap_extents e;
    memset(&e, 0, sizeof e);
    cr_assert_eq(fsmap_map(&m.vol, &f, &e), 0, "%s: %s", path, m.vol.error);
    p[i] = (struct placed){ e.v[0].volume_offset, i };
    fsmap_extents_free(&e);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  /* Each lookup walks the whole directory (no B+ tree descent): the cost
   * per name in a directory of this size, for the record. */
  cr_log_info("%u lookups + maps in a %u-name directory: %.0f us each", files, files,
              ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
                  1e3 / files);
  unmount_image(&m);
  qsort(p, files, sizeof *p, by_offset);
  char path[600];
  snprintf(path, sizeof path, "%s/delete.txt", workdir);
  FILE *out = fopen(path, "w");
  cr_assert_not_null(out);
  for (unsigned i = 0; i < files; i += 2)
    fprintf(out, "f%04u\n", p[i].index);
  fclose(out);
}

/* The volume of tree_script, then a file written into the holes that
 * removing every other fill file leaves: hundreds of runs, so many that
 * its $DATA spills into an extension record through an $ATTRIBUTE_LIST.
 * TREE_BIG: a larger volume, and so many records added late
 * that the $MFT itself needs an attribute list (its second piece lies in
 * an extension record read through the first). */
struct tree_size {
  unsigned mib, fill, late;
};
static const struct tree_size TREE_SMALL = { 24, 2000, 0 }, TREE_BIG = { 40, 4000, 5000 };

static void build_tree(struct tree_size size)
{
  uint8_t *nested = pattern(NESTED_SIZE, 3), *frag = pattern(FRAG_SIZE, 4);
  write_file("nested.bin", nested, NESTED_SIZE);
  write_file("frag.bin", frag, FRAG_SIZE);
  write_file("tree.py", (const uint8_t *)tree_script, sizeof tree_script - 1);
  write_file("frag.py", (const uint8_t *)frag_script, sizeof frag_script - 1);
  free(nested);
  free(frag);
  sh("truncate -s %uM vol.img && mkntfs -F -q -f -c 512 vol.img", size.mib);
  fuse_mount_or_skip("vol.img", "-o compression");
  sh("%s tree.py mnt %u", python(), size.fill);
  fuse_umount();
  choose_holes(size.fill);
  fuse_mount_or_skip("vol.img", "");
  sh("%s frag.py mnt %u", python(), size.late);
  fuse_umount();
}

Test(efi_fsmap_ntfs, tree_through_fuse)
{
  build_tree(TREE_BIG);
  expect_in_output("ntfsinfo -v -F /frag.bin vol.img", "$ATTRIBUTE_LIST",
                   "frag.bin should have an attribute list");
  expect_in_output("ntfsinfo -v -F /comp/c.bin vol.img | grep -A6 'attribute \\$DATA'",
                   "Attribute flags:\t 0x0001", "c.bin should be compressed");
  expect_in_output("ntfsinfo -v -F /sparse.bin vol.img | grep -A6 'attribute \\$DATA'",
                   "Attribute flags:\t 0x8000", "sparse.bin should be sparse");

  struct mounted m;
  mount_ntfs(&m, "vol.img", 0, 0);
  uint8_t *nested = pattern(NESTED_SIZE, 3), *frag = pattern(FRAG_SIZE, 4);
  struct fsmap_extents e = map_and_compare(&m, NESTED, nested, NESTED_SIZE);
  check_against_ntfsinfo(&m, "vol.img", NESTED, &e, NESTED_SIZE);
  fsmap_extents_free(&e);
  cr_assert(lookup(&m, "/images AND more\\LEVEL two").directory);

  e = map_and_compare(&m, "/frag.bin", frag, FRAG_SIZE);
  cr_assert_geq(e.count, 100, "frag.bin should be in hundreds of pieces, got %zu", e.count);
  check_against_ntfsinfo(&m, "vol.img", "/frag.bin", &e, FRAG_SIZE);
  fsmap_extents_free(&e);

  /* The large directory: survivors are found with the record ntfsinfo
   * names, removed names are not. */
  uint64_t list_size;
  char *removed = (char *)slurp("delete.txt", &list_size);
  removed = realloc(removed, list_size + 1);
  removed[list_size] = '\0';
  unsigned checked = 0;
  for (unsigned i = 0; i < TREE_BIG.fill; i++) {
    char upper[32], exact[32], line[16];
    snprintf(upper, sizeof upper, "/FILL/F%04u", i);
    snprintf(exact, sizeof exact, "/fill/f%04u", i);
    snprintf(line, sizeof line, "f%04u\n", i);
    bool gone = strstr(removed, line) != NULL;
    struct fsmap_file f;
    int r = fsmap_lookup(&m.vol, upper, &f);
    cr_assert_eq(r, gone ? -ENOENT : 0, "%s: %d %s", upper, r, m.vol.error);
    if (gone)
      continue;
    cr_assert_eq(f.size, 4096);
    if (checked++ < 4)
      cr_assert_eq(f.id, ntfsinfo_record("vol.img", exact), "%s", exact);
  }
  free(removed);

  expect_map_error(&m, "/comp/c.bin", -ENOTSUP, "compressed file (attribute flag 0x0001)");
  expect_map_error(&m, "/sparse.bin", -ENOTSUP, "sparse file (attribute flag 0x8000)");

  /* The $MFT grew into the holes: records past its first run are read
   * through its own run list. */
  size_t mft_runs = check_mft(&m, "vol.img");
  cr_assert_geq(mft_runs, 2, "the $MFT should be fragmented");
  expect_in_output("ntfsinfo -v -F '/$MFT' vol.img", "$ATTRIBUTE_LIST",
                   "the $MFT should have an attribute list");
  struct fsmap_file late = lookup(&m, "/late/l4999");
  cr_assert_eq(late.id, ntfsinfo_record("vol.img", "/late/l4999"));
  cr_assert_eq(late.size, 0);
  unmount_image(&m);
  free(nested);
  free(frag);
}

/* Through ntfs-3g on 64 KiB clusters: a 300-name directory whose 4 KiB
 * index blocks are smaller than a cluster (their VCNs count 512-byte
 * units), a file with a separate DOS 8.3 name, two POSIX names that
 * differ only in case, and a file and a directory that are reparse points
 * (the tag of a file Windows compressed with WOF). */
static const char names_script[] =
    "import os, sys\n"
    "mnt = sys.argv[1]\n"
    "def put(path, data):\n"
    "    with open(os.path.join(mnt, path), 'wb') as f: f.write(data)\n"
    "os.mkdir(os.path.join(mnt, 'big dir'))\n"
    "for i in range(300): put('big dir/entry number %04d.bin' % i, bytes([i % 251]) * 100)\n"
    "put('Twin', b'upper' * 20000)\n"
    "put('twin', b'lower' * 20000)\n"
    "put('A long file name.data', open('long.bin', 'rb').read())\n"
    "os.setxattr(os.path.join(mnt, 'A long file name.data'), 'system.ntfs_dos_name',\n"
    "            b'ALONGF~1.DAT')\n"
    "wof = bytes([0x17, 0, 0, 0x80, 16, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,\n"
    "             0, 0, 0, 0])\n"
    "put('compact.bin', b'x' * 100000)\n"
    "os.setxattr(os.path.join(mnt, 'compact.bin'), 'system.ntfs_reparse_data', wof)\n"
    "os.mkdir(os.path.join(mnt, 'reparse dir'))\n"
    "put('reparse dir/inner.bin', b'y' * 100000)\n"
    "os.setxattr(os.path.join(mnt, 'reparse dir'), 'system.ntfs_reparse_data', wof)\n";

Test(efi_fsmap_ntfs, names_through_fuse)
{
  size_t long_size = 70000;
  uint8_t *data = pattern(long_size, 7);
  write_file("long.bin", data, long_size);
  write_file("names.py", (const uint8_t *)names_script, sizeof names_script - 1);
  sh("truncate -s 64M vol.img && mkntfs -F -q -f -c 65536 vol.img");
  fuse_mount_or_skip("vol.img", "");
  sh("%s names.py mnt", python());
  fuse_umount();
  /* (ntfsinfo cannot dump index blocks smaller than a cluster: stderr.) */
  expect_in_output("ntfsinfo -v -F '/big dir' vol.img 2>/dev/null", "$INDEX_ALLOCATION",
                   "big dir should be a large index");
  expect_in_output("ntfsinfo -v -F '/A long file name.data' vol.img | grep Namespace", "DOS",
                   "the file should have a DOS name");
  expect_in_output("ntfsinfo -v -F /compact.bin vol.img", "$REPARSE_POINT",
                   "compact.bin should be a reparse point");

  struct mounted m;
  mount_ntfs(&m, "vol.img", 0, 0);
  cr_assert_eq(m.vol.cluster_size, 65536);
  for (unsigned i = 0; i < 300; i++) {
    char path[64];
    snprintf(path, sizeof path, i % 2 ? "/big dir/entry number %04u.bin"
                                      : "/BIG DIR/ENTRY NUMBER %04u.BIN", i);
    struct fsmap_file f = lookup(&m, path);
    cr_assert_eq(f.size, 100, "%s", path);
  }
  cr_assert_eq(lookup(&m, "/big dir/entry number 0123.bin").id,
               ntfsinfo_record("vol.img", "/big dir/entry number 0123.bin"));
  struct fsmap_file f;
  cr_assert_eq(fsmap_lookup(&m.vol, "/big dir/entry number 0300.bin", &f), -ENOENT);

  struct fsmap_extents e = map_and_compare(&m, "/A long file name.data", data, long_size);
  fsmap_extents_free(&e);
  e = map_and_compare(&m, "/alongf~1.dat", data, long_size);   /* the DOS name */
  fsmap_extents_free(&e);

  /* An exact-case name wins over one equal up to case. */
  uint8_t *upper = malloc(100000), *lower = malloc(100000);
  for (size_t i = 0; i < 100000; i++) {
    upper[i] = (uint8_t)"upper"[i % 5];
    lower[i] = (uint8_t)"lower"[i % 5];
  }
  e = map_and_compare(&m, "/Twin", upper, 100000);
  fsmap_extents_free(&e);
  e = map_and_compare(&m, "/twin", lower, 100000);
  fsmap_extents_free(&e);
  cr_assert_eq(fsmap_lookup(&m.vol, "/TWIN", &f), 0, "a case-folded match: %s", m.vol.error);
  expect_map_error(&m, "/compact.bin", -ENOTSUP, "is a reparse point");
  expect_lookup_error(&m, "/reparse dir/inner.bin", -ENOTSUP, "is a reparse point");
  unmount_image(&m);
  free(upper);
  free(lower);
  free(data);
}

/* --- Damaged volumes ------------------------------------------------------ */

/* Volume offset of MFT record n (the test volumes keep a record inside
 * one run). */
static uint64_t record_offset(struct mounted *m, uint64_t n)
{
  const struct ntfs_state *st = m->vol.priv;
  uint64_t cs = m->vol.cluster_size, byte = n * st->record_size;
  for (size_t i = 0; i < st->mft.count; i++) {
    const struct ntfs_run *r = &st->mft.v[i];
    if (byte / cs >= r->vcn && byte / cs < r->vcn + r->count) {
      cr_assert_leq(byte + st->record_size, (r->vcn + r->count) * cs);
      return (r->lcn - r->vcn) * cs + byte;
    }
  }
  cr_assert_fail("record %llu is not in the $MFT's runs", (unsigned long long)n);
  return 0;
}

/* Offset inside record n of its first attribute of type (with a copy of
 * the fixed-up record in rec, a buffer of record_size bytes). */
static uint32_t attr_pos(struct mounted *m, uint64_t n, uint32_t type, uint8_t *rec,
                         struct ntfs_attr *a)
{
  cr_assert_eq(ntfs_read_record(&m->vol, n, rec), 0, "%s", m->vol.error);
  uint32_t pos = 0, at;
  do {
    at = pos;
    cr_assert_eq(ntfs_attr_next(&m->vol, rec, n, &pos, a), 1, "no attribute 0x%x in record "
                 "%llu", type, (unsigned long long)n);
    if (at == 0)
      at = get_le16(rec + 0x14);
  } while (a->type != type);
  return at;
}

/* Bytes at the end of each 512-byte stride hold the update sequence
 * number on disk, not the record's bytes: the patches avoid them. */
static void patch_record(struct mounted *m, uint64_t n, uint32_t at, const void *bytes,
                         size_t len)
{
  for (uint32_t i = at; i < at + len; i++)
    cr_assert(i % 512 < 510, "patch at byte %u of a record hits a fixup", i);
  patch("vol.img", record_offset(m, n) + at, bytes, len);
}

static void remount(struct mounted *m)
{
  unmount_image(m);
  mount_ntfs(m, "vol.img", 0, 0);
}

#define BIG_SIZE 300017u

/* n bytes of image at off (a static buffer). */
static const uint8_t *slurp_at(const char *image, uint64_t off, size_t n)
{
  static uint8_t buf[64];
  char path[600];
  snprintf(path, sizeof path, "%s/%s", workdir, image);
  int fd = open(path, O_RDONLY);
  cr_assert_geq(fd, 0);
  cr_assert_leq(n, sizeof buf);
  cr_assert_eq(pread(fd, buf, n, (off_t)off), (ssize_t)n);
  close(fd);
  return buf;
}

/* A 4 KiB-cluster volume with /big.bin; returns its record number. */
static uint64_t plain_volume(struct mounted *m)
{
  uint8_t *b = pattern(BIG_SIZE, 5);
  write_file("big.bin", b, BIG_SIZE);
  free(b);
  sh("truncate -s 16M vol.img && mkntfs -F -q -f -c 4096 vol.img && "
     "ntfscp vol.img big.bin /big.bin");
  mount_ntfs(m, "vol.img", 0, 0);
  return lookup(m, "/big.bin").id;
}

Test(efi_fsmap_ntfs, torn_record)
{
  struct mounted m;
  uint64_t n = plain_volume(&m);
  uint8_t byte = 0x5a;
  patch("vol.img", record_offset(&m, n) + 510, &byte, 1);   /* the first fixup slot */
  unmount_image(&m);
  mount_ntfs(&m, "vol.img", 0, 0);
  expect_lookup_error(&m, "/big.bin", -EINVAL, "torn write");
  cr_assert(strstr(m.vol.error, "MFT record"), "%s", m.vol.error);
  unmount_image(&m);
}

Test(efi_fsmap_ntfs, record_not_in_use)
{
  struct mounted m;
  uint64_t n = plain_volume(&m);
  uint8_t flags[2] = { 0, 0 };
  patch_record(&m, n, 0x16, flags, 2);
  remount(&m);
  expect_lookup_error(&m, "/big.bin", -EINVAL, "is not in use");
  unmount_image(&m);
}

/* Where /big.bin's $DATA attribute record and its run list are inside
 * its MFT record. */
struct data_attr {
  uint64_t n;
  uint32_t at, runs;
  uint8_t run_header;
};

static struct data_attr big_data_attr(struct mounted *m)
{
  struct data_attr d;
  d.n = plain_volume(m);
  uint8_t *rec = malloc(((struct ntfs_state *)m->vol.priv)->record_size);
  struct ntfs_attr a;
  d.at = attr_pos(m, d.n, NTFS_AT_DATA, rec, &a);
  d.runs = d.at + (uint32_t)(a.runs - (rec + d.at));
  d.run_header = a.runs[0];
  free(rec);
  return d;
}

Test(efi_fsmap_ntfs, run_past_the_volume)
{
  struct mounted m;
  struct data_attr d = big_data_attr(&m);
  unsigned lsize = d.run_header & 15, osize = d.run_header >> 4;
  cr_assert_gt(osize, 0);
  uint8_t top = 0x70;   /* the LCN's top byte: a large positive LCN */
  patch_record(&m, d.n, d.runs + lsize + osize, &top, 1);
  remount(&m);
  expect_map_error(&m, "/big.bin", -EINVAL, "outside the volume");
  cr_assert(strstr(m.vol.error, "attribute 0x80"), "%s", m.vol.error);
  unmount_image(&m);
}

Test(efi_fsmap_ntfs, attribute_overruns_record)
{
  struct mounted m;
  struct data_attr d = big_data_attr(&m);
  uint8_t len[4] = { 0x00, 0x10, 0, 0 };   /* 4096 bytes in a 1 KiB record */
  patch_record(&m, d.n, d.at + 4, len, 4);
  remount(&m);
  expect_lookup_error(&m, "/big.bin", -EINVAL, "overruns the record's used size");
  unmount_image(&m);
}

/* Bytes past the valid data length read as zeros (ntfscat agrees): the
 * lookup reports it, the extents still cover the whole size. */
Test(efi_fsmap_ntfs, valid_data_length)
{
  struct mounted m;
  struct data_attr d = big_data_attr(&m);
  uint8_t init[8];
  put_le64(init, 1000);
  patch_record(&m, d.n, d.at + 0x38, init, 8);
  remount(&m);
  struct fsmap_file f = lookup(&m, "/big.bin");
  cr_assert_eq(f.size, BIG_SIZE);
  cr_assert_eq(f.valid_size, 1000);
  struct fsmap_extents e;
  memset(&e, 0, sizeof e);
  cr_assert_eq(fsmap_map(&m.vol, &f, &e), 0, "%s", m.vol.error);
  cr_assert_geq(e.mapped, BIG_SIZE);
  fsmap_extents_free(&e);
  unmount_image(&m);
  uint64_t size;
  sh("ntfscat vol.img /big.bin > cat.bin");
  uint8_t *cat = slurp("cat.bin", &size), *b = pattern(BIG_SIZE, 5);
  cr_assert_eq(size, BIG_SIZE);
  cr_assert(memcmp(cat, b, 1000) == 0);
  for (size_t i = 1000; i < size; i++)
    cr_assert_eq(cat[i], 0, "ntfscat reads byte %zu past the valid length as %u", i, cat[i]);
  free(cat);
  free(b);
}

/* Sizes far past what the run list holds (2^64 - 1: the cluster count
 * must not wrap around) are refused, never mapped short. */
Test(efi_fsmap_ntfs, size_past_the_run_list)
{
  struct mounted m;
  struct data_attr d = big_data_attr(&m);
  uint8_t sizes[24];
  memset(sizes, 0xff, sizeof sizes);   /* allocated, data and initialized size */
  patch_record(&m, d.n, d.at + 0x28, sizes, sizeof sizes);
  remount(&m);
  cr_assert_eq(lookup(&m, "/big.bin").size, UINT64_MAX);
  expect_map_error(&m, "/big.bin", -EINVAL, "the run list covers");
  unmount_image(&m);
}

/* The attribute flags of encrypted and compressed data (ntfs-3g makes no
 * encrypted file: the flag is set by hand). */
Test(efi_fsmap_ntfs, encrypted_and_compressed_flags)
{
  struct mounted m;
  struct data_attr d = big_data_attr(&m);
  sh("cp vol.img good.img");
  uint8_t flags[2] = { 0x00, 0x40 };
  patch_record(&m, d.n, d.at + 0x0c, flags, 2);
  remount(&m);
  expect_map_error(&m, "/big.bin", -ENOTSUP, "encrypted file (attribute flag 0x4000)");
  unmount_image(&m);
  sh("cp good.img vol.img");
  mount_ntfs(&m, "vol.img", 0, 0);
  flags[0] = 0x01;
  flags[1] = 0x00;
  patch_record(&m, d.n, d.at + 0x0c, flags, 2);
  remount(&m);
  expect_map_error(&m, "/big.bin", -ENOTSUP, "compressed file (attribute flag 0x0001)");
  unmount_image(&m);
}

Test(efi_fsmap_ntfs, bad_boot_sectors)
{
  struct mounted m;
  plain_volume(&m);
  uint64_t size = m.vol.size;
  unmount_image(&m);
  sh("cp vol.img good.img");
  static const struct {
    unsigned off;
    uint8_t value;
    const char *text;
  } cases[] = {
    { 0x0d, 0x00, "sectors per cluster" },
    { 0x0d, 0x03, "sectors per cluster" },
    { 0x0d, 0xe0, "sectors per cluster" },   /* 2^32 sectors */
    { 0x0b, 0x01, "bytes per sector" },
    { 0x40, 0x00, "MFT record size" },
    { 0x40, 0xe0, "MFT record size" },
    { 0x44, 0x00, "index block size" },
    { 0x37, 0x01, "$MFT cluster" },   /* the top byte of the MFT's LCN */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sh("cp good.img vol.img");
    patch("vol.img", cases[i].off, &cases[i].value, 1);
    int r = try_mount(&m, "vol.img", 0, 0);
    cr_assert_eq(r, -EINVAL, "case %zu: %d %s", i, r, m.vol.error);
    cr_assert(strstr(m.vol.error, cases[i].text), "case %zu: %s", i, m.vol.error);
    unmount_image(&m);
  }
  /* Truncated: the partition ends before the file system does. */
  sh("cp good.img vol.img");
  int r = try_mount(&m, "vol.img", 0, size / 2);
  cr_assert_eq(r, -EINVAL);
  cr_assert(strstr(m.vol.error, "larger than its partition"), "%s", m.vol.error);
  unmount_image(&m);
  /* The boot sector names the $MFTMirr's cluster as the $MFT's: a valid
   * copy of record 0 is found there, whose run list says otherwise. */
  uint8_t mirror[8];
  memcpy(mirror, slurp_at("vol.img", 0x38, 8), 8);
  patch("vol.img", 0x30, mirror, 8);
  r = try_mount(&m, "vol.img", 0, 0);
  cr_assert_eq(r, -EINVAL, "%d %s", r, m.vol.error);
  cr_assert(strstr(m.vol.error, "does not start at the cluster the boot sector names"), "%s",
            m.vol.error);
  unmount_image(&m);
  sh("cp good.img vol.img");
  /* The $MFT's record 0 damaged: the mount says so. */
  mount_ntfs(&m, "vol.img", 0, 0);
  uint64_t mft = record_offset(&m, 0);
  unmount_image(&m);
  patch("vol.img", mft, "BAAD", 4);
  r = try_mount(&m, "vol.img", 0, 0);
  cr_assert_eq(r, -EINVAL);
  cr_assert(strstr(m.vol.error, "MFT record 0: magic"), "%s", m.vol.error);
  unmount_image(&m);
}

/* Repeated attribute list entries (a list naming the same piece twice
 * would map its clusters twice) and entries pointing at another file's
 * record are refused. */
Test(efi_fsmap_ntfs, attribute_list_loops)
{
  build_tree(TREE_SMALL);
  struct mounted m;
  mount_ntfs(&m, "vol.img", 0, 0);
  uint64_t n = lookup(&m, "/frag.bin").id;
  uint64_t other = lookup(&m, NESTED).id;
  uint8_t *rec = malloc(((struct ntfs_state *)m.vol.priv)->record_size);
  struct ntfs_attr a;
  uint32_t at = attr_pos(&m, n, NTFS_AT_ATTRIBUTE_LIST, rec, &a);
  /* Where the list's bytes are on the volume (resident: inside the
   * record, away from the fixup slots; else in its own clusters). */
  uint8_t list[4096];
  uint64_t list_off;
  uint32_t list_len;
  if (!a.nonresident) {
    list_off = record_offset(&m, n) + at + (uint32_t)(a.value - (rec + at));
    list_len = a.value_len;
  } else {
    struct ntfs_runlist rl;
    memset(&rl, 0, sizeof rl);
    cr_assert_eq(ntfs_runs_decode(&m.vol, &a, &rl), 0, "%s", m.vol.error);
    cr_assert_geq(rl.v[0].count * m.vol.cluster_size, a.data_size);
    list_off = rl.v[0].lcn * m.vol.cluster_size;
    list_len = (uint32_t)a.data_size;
    ntfs_runs_free(&rl);
  }
  cr_assert_leq(list_len, sizeof list);
  cr_assert_eq(read_cb(&m.vf, list_off, list, list_len), 0);
  cr_log_info("frag.bin's attribute list: %u bytes, %s", list_len,
              a.nonresident ? "non-resident" : "resident");
  unmount_image(&m);
  free(rec);
  /* The first two $DATA entries. */
  uint32_t data[2], found = 0;
  for (uint32_t e = 0; e < list_len && found < 2; e += get_le16(list + e + 4))
    if (get_le32(list + e) == NTFS_AT_DATA)
      data[found++] = e;
  cr_assert_eq(found, 2, "frag.bin's $DATA should be in two pieces at least");
  sh("cp vol.img good.img");

  /* The second entry names the first piece again (lowest VCN, reference,
   * instance), so its clusters would be mapped twice. */
  for (uint32_t i = 0; i < 0x12; i++)
    cr_assert((list_off + data[1] + 8 + i) % 512 < 510 || a.nonresident);
  patch("vol.img", list_off + data[1] + 8, list + data[0] + 8, 0x12);
  mount_ntfs(&m, "vol.img", 0, 0);
  expect_map_error(&m, "/frag.bin", -EINVAL, "pieces repeated");
  unmount_image(&m);

  /* The second piece's entry names a record of another file. */
  sh("cp good.img vol.img");
  uint8_t ref[8];
  memcpy(ref, list + data[1] + 0x10, 8);
  put_le64(ref, (get_le64(ref) & ~0xffffffffffffull) | other);
  patch("vol.img", list_off + data[1] + 0x10, ref, 8);
  mount_ntfs(&m, "vol.img", 0, 0);
  expect_lookup_error(&m, "/frag.bin", -EINVAL, "which belongs to record");
  unmount_image(&m);
}

/* Bit flips in the boot sector, the $MFT and the root index of a small
 * volume: no crash, no read out of bounds, extents inside the volume. */
Test(efi_fsmap_ntfs, damaged_volumes_do_not_crash)
{
  uint8_t *d = pattern(40000, 6);
  write_file("d.bin", d, 40000);
  free(d);
  sh("truncate -s 4M vol.img && mkntfs -F -q -f -c 512 vol.img && "
     "ntfscp vol.img d.bin /d.bin && ntfscp vol.img d.bin '/A long name.bin'");
  struct mounted m;
  mount_ntfs(&m, "vol.img", 0, 0);
  uint64_t mft = record_offset(&m, 0);
  uint64_t root_index = 0;
  struct ntfs_stream s;
  cr_assert_eq(ntfs_stream_load(&m.vol, 5, NTFS_AT_INDEX_ALLOCATION, ntfs_i30, 4, &s), 0);
  if (s.found && s.runs.count)
    root_index = s.runs.v[0].lcn * m.vol.cluster_size + 4096;
  ntfs_stream_free(&s);
  unmount_image(&m);
  uint64_t size;
  uint8_t *img = slurp("vol.img", &size);
  static const char *const paths[] = { "/d.bin", "/A long name.bin", "/$MFT", NULL };
  /* The first 40 records hold the metafiles, the root and the files. */
  uint64_t hot = mft + 40 * 1024;
  if (root_index > hot)
    hot = root_index;
  mutate_and_walk(img, size, hot, paths, 10000);
  free(img);
}

/* --- A volume Windows made -------------------------------------------------- */

/* ../shared/images next to the source tree, or NULL. */
static const char *shared_images(void)
{
  static char path[600];
  snprintf(path, sizeof path, "%s/../../shared/images", VHD_TESTS_DIR);
  return access(path, R_OK) == 0 ? path : NULL;
}

static void compare_with_ntfscat(struct mounted *m, const char *path)
{
  uint64_t size;
  sh("ntfscat part.img '%s' > cat.bin", path);
  uint8_t *expect = slurp("cat.bin", &size);
  struct fsmap_extents e = map_and_compare(m, path, expect, size);
  fsmap_extents_free(&e);
  free(expect);
}

/* dissect-fixed.vhdx (Windows 10, see CATALOG.md): an MBR disk whose 7 MiB
 * partition at sector 128 Windows formatted as NTFS. Its metafiles and
 * the directories under $Extend are laid out by Windows, not mkntfs. */
Test(efi_fsmap_ntfs, windows_made_volume)
{
  const char *images = shared_images();
  if (!images)
    cr_skip_test("../shared/images is not next to the source tree");
  if (system("qemu-img --version >/dev/null 2>&1") != 0)
    cr_skip_test("qemu-img is not installed");
  sh("zcat '%s/dissect-fixed.vhdx.gz' > win.vhdx && qemu-img convert -f vhdx -O raw win.vhdx "
     "win.raw && dd if=win.raw of=part.img bs=512 skip=128 count=14336 status=none",
     images);
  struct mounted m;
  mount_ntfs(&m, "win.raw", 128 * 512, 14336 * 512);
  cr_assert_eq(m.vol.cluster_size, 4096);
  compare_with_ntfscat(&m, "/$UpCase");
  compare_with_ntfscat(&m, "/$LogFile");
  compare_with_ntfscat(&m, "/$AttrDef");
  compare_with_ntfscat(&m, "/$Boot");
  unmount_image(&m);

  mount_ntfs(&m, "part.img", 0, 0);
  check_mft(&m, "part.img");
  const char *tops = "/$Extend/$RmMetadata/$TxfLog/$Tops";
  struct fsmap_file f = lookup(&m, "\\$EXTEND\\$rmmetadata\\$txflog\\$TOPS");
  cr_assert_eq(f.id, ntfsinfo_record("part.img", tops));
  expect_map_error(&m, tops, -ENOTSUP, "resident file");
  f = lookup(&m, "/$Extend/$RmMetadata/$Repair");   /* named streams only */
  cr_assert_eq(f.size, 0);
  struct fsmap_extents e;
  memset(&e, 0, sizeof e);
  cr_assert_eq(fsmap_map(&m.vol, &f, &e), 0, "%s", m.vol.error);
  cr_assert_eq(e.count, 0);
  expect_map_error(&m, "/$Secure", -EINVAL, "no unnamed $DATA");
  unmount_image(&m);
}

/* --- Volumes the loader must not write to ---------------------------------- */

/* mkntfs leaves a clean volume; setting the dirty bit of $Volume's
 * $VOLUME_INFORMATION (as Windows does while the volume is mounted, and
 * leaves after a crash) makes it unclean. */
Test(efi_fsmap_ntfs, dirty_volume_is_unclean)
{
  struct mounted m;
  plain_volume(&m);
  cr_assert_str_empty(m.vol.unclean, "a fresh mkntfs volume: %s", m.vol.unclean);
  uint8_t *rec = malloc(((const struct ntfs_state *)m.vol.priv)->record_size);
  struct ntfs_attr a;
  uint32_t at = attr_pos(&m, NTFS_VOLUME_RECORD, NTFS_AT_VOLUME_INFORMATION, rec, &a);
  cr_assert(!a.nonresident && a.value_len >= 12);
  uint32_t flags_at = at + (uint32_t)(a.value - (rec + at)) + 10;
  uint8_t flags[2] = { (uint8_t)(a.value[10] | NTFS_VOLUME_DIRTY), a.value[11] };
  free(rec);
  patch_record(&m, NTFS_VOLUME_RECORD, flags_at, flags, 2);
  remount(&m);
  cr_assert(strstr(m.vol.unclean, "dirty"), "unclean: \"%s\"", m.vol.unclean);
  /* Reading still works: only writes depend on it. */
  lookup(&m, "/big.bin");
  unmount_image(&m);
}

/* Windows Fast Startup and hibernation leave hiberfil.sys starting with
 * "hibr" while the volume stays mounted in the sleeping system. */
Test(efi_fsmap_ntfs, hibernated_volume_is_unclean)
{
  uint8_t *h = pattern(65536, 9);
  memcpy(h, "hibr", 4);
  write_file("hiberfil.sys", h, 65536);
  memcpy(h, "wake", 4);   /* what Windows writes after resuming */
  write_file("woken.sys", h, 65536);
  free(h);
  sh("truncate -s 16M vol.img && mkntfs -F -q -f -c 4096 vol.img && "
     "ntfscp vol.img woken.sys /hiberfil.sys");
  struct mounted m;
  mount_ntfs(&m, "vol.img", 0, 0);
  cr_assert_str_empty(m.vol.unclean, "resumed: %s", m.vol.unclean);
  unmount_image(&m);
  sh("ntfscp -f vol.img hiberfil.sys /hiberfil.sys");
  mount_ntfs(&m, "vol.img", 0, 0);
  cr_assert(strstr(m.vol.unclean, "hibernated"), "unclean: \"%s\"", m.vol.unclean);
  unmount_image(&m);
}
