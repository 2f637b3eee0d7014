/* SPDX-License-Identifier: BSD-3-Clause */
/* The UEFI loader's extent mapper (efi-loader/fsmap/) on the host.
 *
 * The mapper is plain C over a "read bytes of the volume" callback, so the
 * same files the loader links are compiled into this test (included below,
 * which keeps the test independent of whether the loader is built). The
 * file systems are made by the real tools: mkfs.fat + mtools for FAT12/16/32,
 * mkfs.exfat + tests/efi/exfatput.py for exFAT (checked by fsck.exfat).
 * Oracles: the bytes read back through the extents must equal the file's
 * content, and for FAT the cluster runs must equal what mtools' mshowfat
 * reports. Fragmented files are made on purpose and the test checks that
 * they really are fragmented.
 */
#include "fsmap_testutil.h"

static void make_workdir(void)
{
  make_workdir_named("efi-extents");
}

TestSuite(efi_extents, .init = make_workdir, .fini = remove_workdir);

/* The extents as FAT cluster runs "<a-b> <c-d>" in mshowfat's format. */
static void runs_text(const struct fsmap_volume *vol, const struct fsmap_extents *e,
                      char *out, size_t size)
{
  out[0] = '\0';
  for (size_t i = 0; i < e->count; i++) {
    uint64_t first = (e->v[i].volume_offset - vol->heap_offset) / vol->cluster_size + 2;
    uint64_t last = first + e->v[i].length / vol->cluster_size - 1;
    size_t len = strlen(out);
    if (i && len + 1 < size) {
      out[len++] = ' ';
      out[len] = '\0';
    }
    if (first == last)
      snprintf(out + len, size - len, "<%llu>", (unsigned long long)first);
    else
      snprintf(out + len, size - len, "<%llu-%llu>", (unsigned long long)first,
               (unsigned long long)last);
  }
}

static void check_against_mshowfat(struct mounted *m, const char *image, const char *path,
                                   const struct fsmap_extents *e)
{
  char *out = sh_output("mshowfat -i %s '::%s'", image, path);
  const char *runs = strchr(out, '<');
  cr_assert_not_null(runs, "mshowfat printed no runs: %s", out);
  char mine[4096];
  runs_text(&m->vol, e, mine, sizeof mine);
  size_t n = strcspn(runs, "\r\n");
  cr_assert(strlen(mine) == n && strncmp(mine, runs, n) == 0,
            "%s: mapper runs %s, mshowfat %.*s", path, mine, (int)n, runs);
  free(out);
}

/* A FAT volume of kind fat_bits with small, long-named, nested and
 * deliberately fragmented files. */
static void fat_case(int fat_bits, unsigned kib, unsigned sectors_per_cluster,
                     unsigned sector_size)
{
  sh("mkfs.fat -C -F %d -s %u -S %u vol.img %u", fat_bits, sectors_per_cluster, sector_size,
     kib);
  struct mounted m;
  mount_image(&m, "vol.img", 0, 0);
  cr_assert_eq((int)m.vol.kind, fat_bits, "mkfs.fat -F %d made %s", fat_bits,
               fsmap_kind_name(m.vol.kind));
  uint64_t cs = m.vol.cluster_size;
  unmount_image(&m);

  /* Plain, long-named and nested files. */
  size_t small = 1000, multi = (size_t)(cs * 7 + 123);
  uint8_t *a = pattern(small, 1), *b = pattern(multi, 2);
  write_file("a.bin", a, small);
  write_file("b.bin", b, multi);
  sh("mcopy -i vol.img a.bin ::/SMALL.BIN && mmd -i vol.img '::/A directory with a long name' "
     "&& mcopy -i vol.img b.bin '::/A directory with a long name/Multi cluster file.data' "
     "&& mcopy -i vol.img a.bin ::/EMPTYDIR.TXT && mdel -i vol.img ::/EMPTYDIR.TXT");

  /* Fragmentation: fill the volume with 8 equal files, delete every other
   * one, then write a file bigger than any hole. */
  char *info = sh_output("mdir -i vol.img :: | grep 'bytes free' | tr -d ' '");
  unsigned long free_clusters = (unsigned long)(strtoull(info, NULL, 10) / cs);
  size_t piece = (size_t)(free_clusters / 8 - 1) * cs;
  free(info);
  for (int i = 0; i < 8; i++) {
    uint8_t *p = pattern(piece, 10 + i);
    char name[32];
    snprintf(name, sizeof name, "fill%d.bin", i);
    write_file(name, p, piece);
    sh("mcopy -i vol.img %s ::/FILL%d.BIN", name, i);
    free(p);
  }
  sh("mdel -i vol.img ::/FILL1.BIN ::/FILL3.BIN ::/FILL5.BIN");
  size_t frag_size = piece * 5 / 2;
  uint8_t *frag = pattern(frag_size, 99);
  write_file("frag.bin", frag, frag_size);
  sh("mcopy -i vol.img frag.bin '::/Fragmented file.bin'");

  mount_image(&m, "vol.img", 0, 0);
  struct fsmap_extents e = map_and_compare(&m, "/SMALL.BIN", a, small);
  cr_assert_eq(e.count, 1);
  check_against_mshowfat(&m, "vol.img", "/SMALL.BIN", &e);
  fsmap_extents_free(&e);

  /* Case-insensitive, backslashes, long names in both components. */
  e = map_and_compare(&m, "\\a DIRECTORY with a long name\\multi CLUSTER file.data", b, multi);
  check_against_mshowfat(&m, "vol.img", "/A directory with a long name/Multi cluster file.data",
                         &e);
  fsmap_extents_free(&e);

  e = map_and_compare(&m, "/Fragmented file.bin", frag, frag_size);
  cr_assert_geq(e.count, 3, "the file should be in at least 3 pieces, got %zu", e.count);
  check_against_mshowfat(&m, "vol.img", "/Fragmented file.bin", &e);
  fsmap_extents_free(&e);

  uint8_t *f6 = pattern(piece, 16);
  e = map_and_compare(&m, "/FILL6.BIN", f6, piece);
  fsmap_extents_free(&e);

  /* Missing names fail with ENOENT and say which component is missing. */
  struct fsmap_file f;
  cr_assert_eq(fsmap_lookup(&m.vol, "/A directory with a long name/nothing", &f), -ENOENT);
  cr_assert(strstr(m.vol.error, "nothing not found"), "%s", m.vol.error);
  cr_assert_eq(fsmap_lookup(&m.vol, "/FILL1.BIN", &f), -ENOENT, "deleted files are gone");
  cr_assert_eq(fsmap_lookup(&m.vol, "/SMALL.BIN/x", &f), -ENOENT);
  cr_assert(strstr(m.vol.error, "not a directory"), "%s", m.vol.error);
  unmount_image(&m);
  free(a);
  free(b);
  free(frag);
  free(f6);
}

Test(efi_extents, fat12) { fat_case(12, 2048, 1, 512); }
Test(efi_extents, fat16) { fat_case(16, 32768, 4, 512); }
Test(efi_extents, fat32) { fat_case(32, 40960, 1, 512); }
Test(efi_extents, fat16_4k_sectors) { fat_case(16, 20480, 1, 4096); }

static const char *exfatput(void)
{
  static char path[512];
  snprintf(path, sizeof path, "%s/efi/exfatput.py", VHD_TESTS_DIR);
  return path;
}

Test(efi_extents, exfat)
{
  const char *put = exfatput();
  sh("truncate -s 48M vol.img && mkfs.exfat -c 4096 vol.img");
  size_t big = 4096 * 40 + 17, tiny = 100, frag_size = 4096 * 25 + 1;
  uint8_t *b = pattern(big, 3), *t = pattern(tiny, 4), *fr = pattern(frag_size, 5);
  write_file("big.bin", b, big);
  write_file("tiny.bin", t, tiny);
  write_file("frag.bin", fr, frag_size);
  sh("%s %s vol.img mkdir '/Images and more' "
     "+ mkdir '/Images and more/chained dir' --chain "
     "+ put big.bin '/Images and more/A rather long file name, with commas and spaces.vhd' "
     "+ put tiny.bin /tiny.txt "
     "+ put frag.bin '/Images and more/chained dir/fragmented.bin' --fragments 4 "
     "+ put tiny.bin '/Images and more/chained dir/chained.bin' --chain "
     "&& fsck.exfat -n vol.img", python(), put);

  struct mounted m;
  mount_image(&m, "vol.img", 0, 0);
  cr_assert_eq(m.vol.kind, FSMAP_EXFAT);
  struct fsmap_extents e = map_and_compare(
      &m, "/images AND more/A RATHER long file name, with commas and spaces.vhd", b, big);
  cr_assert_eq(e.count, 1, "a NoFatChain file is one run");
  fsmap_extents_free(&e);
  e = map_and_compare(&m, "/tiny.txt", t, tiny);
  fsmap_extents_free(&e);
  e = map_and_compare(&m, "\\Images and more\\chained dir\\fragmented.bin", fr, frag_size);
  cr_assert_eq(e.count, 4, "4 fragments expected, got %zu", e.count);
  fsmap_extents_free(&e);
  e = map_and_compare(&m, "/Images and more/chained dir/chained.bin", t, tiny);
  fsmap_extents_free(&e);
  struct fsmap_file f;
  cr_assert_eq(fsmap_lookup(&m.vol, "/Images and more/absent.vhd", &f), -ENOENT);
  cr_assert(strstr(m.vol.error, "absent.vhd not found"), "%s", m.vol.error);
  unmount_image(&m);
  free(b);
  free(t);
  free(fr);
}

/* A volume inside a partitioned disk: the callback adds the partition
 * start, the mapper's offsets stay volume-relative. */
Test(efi_extents, fat_inside_gpt_partition)
{
  sh("truncate -s 40M disk.img && sgdisk -o -a 2048 -n 1:2048:0 -t 1:ef00 disk.img && "
     "mformat -i disk.img@@1048576 -T 79839 -H 2048 -F -v ESP :: ");
  uint8_t *d = pattern(300000, 7);
  write_file("d.bin", d, 300000);
  sh("mcopy -i disk.img@@1048576 d.bin ::/D.BIN");
  struct mounted m;
  mount_image(&m, "disk.img", 1048576, 79839ull * 512);
  cr_assert_eq(m.vol.kind, FSMAP_FAT32);
  struct fsmap_extents e = map_and_compare(&m, "/D.BIN", d, 300000);
  fsmap_extents_free(&e);
  unmount_image(&m);
  free(d);
}

/* Bad volumes: never a crash, a clear refusal instead. */
Test(efi_extents, not_a_file_system)
{
  sh("truncate -s 4M zero.img");
  struct mounted m;
  char path[512];
  snprintf(path, sizeof path, "%s/zero.img", workdir);
  m.vf.fd = open(path, O_RDONLY);
  m.vf.base = 0;
  cr_assert_eq(fsmap_mount(&m.vol, read_cb, &m.vf, 4 << 20), -ENOTSUP);
  fsmap_unmount(&m.vol);
  cr_assert_eq(fsmap_mount(&m.vol, read_cb, &m.vf, 100), -ENOTSUP, "too small");
  fsmap_unmount(&m.vol);
  close(m.vf.fd);
}

Test(efi_extents, fat_bad_boot_sector_and_chains)
{
  sh("mkfs.fat -C -F 16 -s 4 vol.img 32768");
  uint8_t *b = pattern(50000, 8);
  write_file("b.bin", b, 50000);
  sh("mcopy -i vol.img b.bin ::/B.BIN");
  struct mounted m;
  mount_image(&m, "vol.img", 0, 0);
  struct fsmap_file f;
  cr_assert_eq(fsmap_lookup(&m.vol, "/B.BIN", &f), 0);
  uint64_t fat = m.vol.fat_offset;
  uint32_t first = f.first_cluster;
  unmount_image(&m);

  /* The chain loops back to its first cluster. */
  uint8_t loop[2] = { (uint8_t)first, (uint8_t)(first >> 8) };
  patch("vol.img", fat + 2 * (first + 3), loop, 2);
  mount_image(&m, "vol.img", 0, 0);
  cr_assert_eq(fsmap_lookup(&m.vol, "/B.BIN", &f), 0);
  struct fsmap_extents e;
  memset(&e, 0, sizeof e);
  cr_assert_eq(fsmap_map(&m.vol, &f, &e), -EINVAL);
  cr_assert(strstr(m.vol.error, "twice"), "%s", m.vol.error);
  unmount_image(&m);

  /* The chain ends early. */
  uint8_t eoc[2] = { 0xff, 0xff };
  patch("vol.img", fat + 2 * (first + 3), eoc, 2);
  mount_image(&m, "vol.img", 0, 0);
  cr_assert_eq(fsmap_lookup(&m.vol, "/B.BIN", &f), 0);
  cr_assert_eq(fsmap_map(&m.vol, &f, &e), -EINVAL);
  cr_assert(strstr(m.vol.error, "chain ends"), "%s", m.vol.error);
  unmount_image(&m);

  /* A chain pointing at a free/out-of-range cluster. */
  uint8_t wild[2] = { 0xf0, 0xff };
  patch("vol.img", fat + 2 * (first + 3), wild, 2);
  mount_image(&m, "vol.img", 0, 0);
  cr_assert_eq(fsmap_lookup(&m.vol, "/B.BIN", &f), 0);
  cr_assert_eq(fsmap_map(&m.vol, &f, &e), -EINVAL);
  unmount_image(&m);
  fsmap_extents_free(&e);

  /* A boot sector claiming more sectors than the volume has. */
  uint8_t huge[2] = { 0xff, 0xff };
  patch("vol.img", 19, huge, 2);
  char path[512];
  snprintf(path, sizeof path, "%s/vol.img", workdir);
  m.vf.fd = open(path, O_RDONLY);
  m.vf.base = 0;
  cr_assert_eq(fsmap_mount(&m.vol, read_cb, &m.vf, 4 << 20), -EINVAL);
  cr_assert(strstr(m.vol.error, "larger than its partition"), "%s", m.vol.error);
  fsmap_unmount(&m.vol);
  close(m.vf.fd);
  free(b);
}

Test(efi_extents, exfat_bad_entry_set_checksum)
{
  const char *put = exfatput();
  sh("truncate -s 16M vol.img && mkfs.exfat -c 4096 vol.img");
  uint8_t *t = pattern(5000, 9);
  write_file("t.bin", t, 5000);
  sh("%s %s vol.img put t.bin /t.bin", python(), put);
  struct mounted m;
  mount_image(&m, "vol.img", 0, 0);
  uint64_t root = fsmap_cluster_offset(&m.vol, m.vol.root_cluster);
  /* Find the file's entry set in the root directory and flip a name byte. */
  uint8_t dir[4096];
  cr_assert_eq(read_cb(&m.vf, root, dir, sizeof dir), 0);
  unmount_image(&m);
  size_t at = 0;
  while (at < sizeof dir && dir[at] != 0x85)
    at += 32;
  cr_assert_lt(at, sizeof dir);
  uint8_t x = (uint8_t)(dir[at + 64 + 2] ^ 0x20);
  patch("vol.img", root + at + 64 + 2, &x, 1);
  mount_image(&m, "vol.img", 0, 0);
  struct fsmap_file f;
  int r = fsmap_lookup(&m.vol, "/T.bin", &f);
  cr_assert_eq(r, -EINVAL, "r=%d %s", r, m.vol.error);
  cr_assert(strstr(m.vol.error, "checksum"), "%s", m.vol.error);
  unmount_image(&m);
  free(t);
}

Test(efi_extents, damaged_volumes_do_not_crash)
{
  sh("mkfs.fat -C -F 12 -s 1 fat.img 1024");
  uint8_t *d = pattern(40000, 50);
  write_file("d.bin", d, 40000);
  sh("mmd -i fat.img '::/Some directory' && "
     "mcopy -i fat.img d.bin '::/Some directory/A long name.bin' && "
     "mcopy -i fat.img d.bin ::/SHORT.BIN");
  sh("truncate -s 8M ex.img && mkfs.exfat -c 4096 ex.img && %s %s ex.img mkdir /Dir + "
     "put d.bin '/Dir/A long name.bin' --fragments 3 + put d.bin /short.bin",
     python(), exfatput());
  static const char *const paths[] = { "/Some directory/A long name.bin", "/SHORT.BIN",
                                       "/Dir/A long name.bin", "/short.bin", NULL };
  uint64_t size;
  uint8_t *fat = slurp("fat.img", &size);
  /* Boot sector, both FATs and the root directory of this FAT12 volume. */
  mutate_and_walk(fat, size, 16384, paths, 3000);
  free(fat);
  uint8_t *ex = slurp("ex.img", &size);
  /* Boot region, FAT, and the start of the cluster heap (bitmap, up-case
   * table, root and sub-directories). */
  struct mem_vol mv = { ex, size };
  struct fsmap_volume vol;
  cr_assert_eq(fsmap_mount(&vol, mem_read, &mv, size), 0);
  uint64_t hot = vol.heap_offset + 16 * (uint64_t)vol.cluster_size;
  fsmap_unmount(&vol);
  mutate_and_walk(ex, size, hot < size ? hot : size, paths, 3000);
  free(ex);
  free(d);
}
