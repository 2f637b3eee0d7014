/* SPDX-License-Identifier: BSD-3-Clause */
/* NTFS: the boot sector, the $MFT's own run list, and a file's unnamed
 * $DATA turned into extents. Records, attributes and run lists are in
 * fsmap_ntfs_attr.c, directories in fsmap_ntfs_index.c.
 *
 * Only files whose clusters hold their bytes as they are can be served
 * through the block device: resident, compressed, encrypted, sparse and
 * reparse-point files are refused with -ENOTSUP. A volume marked dirty
 * ($Volume) or hibernated (hiberfil.sys) maps as the MFT says now, but
 * vol->unclean says why the loader must not write through it. */
#include "fsmap_ntfs_priv.h"
#include "util/endian.h"
#include "util/strfmt.h"

#define NTFS_MFT_RECORD 0
#define NTFS_VOLUME_RECORD 3
#define NTFS_ROOT_RECORD 5
#define NTFS_AT_VOLUME_INFORMATION 0x70u
#define NTFS_VOLUME_DIRTY 0x0001u
#define NTFS_CLUSTER_MAX (2u << 20)
#define NTFS_RECORD_MAX 65536u

/* Boot sector bytes 0x40/0x44: clusters per record, or when negative
 * 2^-v bytes. 0 when the result is not a power of two in [512, max]. */
static uint32_t ntfs_record_bytes(uint8_t code, uint32_t cluster, uint32_t max)
{
  int8_t v = (int8_t)code;
  uint64_t bytes = v > 0 ? (uint64_t)v * cluster : v < 0 && v >= -31 ? 1ull << -v : 0;
  if (bytes < 512 || bytes > max || (bytes & (bytes - 1)))
    return 0;
  return (uint32_t)bytes;
}

/* Where the $MFT's records are: the first piece of its $DATA is in record
 * 0 at the LCN the boot sector names; when record 0 has an attribute list,
 * the other pieces are read through the part mapped so far. */
static int ntfs_load_mft(struct fsmap_volume *vol, struct ntfs_state *st, uint64_t mft_lcn)
{
  uint64_t cs = vol->cluster_size;
  uint64_t first = (st->record_size + cs - 1) / cs;
  if (first > st->clusters - mft_lcn)
    return fsmap_fail(vol, EINVAL, "NTFS boot sector: $MFT at cluster %llu runs past the "
                      "volume", (unsigned long long)mft_lcn);
  st->mft.v = vhd_malloc(sizeof *st->mft.v);
  if (!st->mft.v)
    return fsmap_fail(vol, ENOMEM, "out of memory");
  st->mft.v[0] = (struct ntfs_run){ 0, mft_lcn, first, false };
  st->mft.count = st->mft.cap = 1;
  st->mft.next_vcn = first;
  st->mft_records = 1;

  uint8_t *rec = vhd_malloc(st->record_size);
  if (!rec)
    return fsmap_fail(vol, ENOMEM, "out of memory");
  struct ntfs_runlist runs;
  memset(&runs, 0, sizeof runs);
  struct ntfs_attr a;
  uint32_t pos = 0;
  bool has_list = false, found = false;
  uint64_t data_size = 0;
  int r = ntfs_read_record(vol, NTFS_MFT_RECORD, rec);
  while (r == 0 && (r = ntfs_attr_next(vol, rec, NTFS_MFT_RECORD, &pos, &a)) == 1) {
    r = 0;
    has_list |= a.type == NTFS_AT_ATTRIBUTE_LIST;
    if (a.type == NTFS_AT_DATA && a.name_len == 0 && a.nonresident && a.lowest_vcn == 0 &&
        !found) {
      found = true;
      data_size = a.data_size;
      r = ntfs_runs_decode(vol, &a, &runs);
    }
  }
  vhd_free(rec);
  if (r == 0 && !found)
    r = fsmap_fail(vol, EINVAL, "MFT record 0 holds no first piece of the $MFT's $DATA");
  if (r == 0 && (runs.count == 0 || runs.data_clusters != runs.next_vcn ||
                 runs.v[0].lcn != mft_lcn))
    r = fsmap_fail(vol, EINVAL, "the $MFT's run list has holes or does not start at the "
                   "cluster the boot sector names (%llu)", (unsigned long long)mft_lcn);
  if (r == 0) {
    ntfs_runs_free(&st->mft);
    st->mft = runs;
    memset(&runs, 0, sizeof runs);
    uint64_t mapped = st->mft.next_vcn * cs;
    st->mft_records = (data_size < mapped ? data_size : mapped) / st->record_size;
  }
  ntfs_runs_free(&runs);
  if (r < 0 || !has_list)
    return r;

  struct ntfs_stream all;
  r = ntfs_stream_load(vol, NTFS_MFT_RECORD, NTFS_AT_DATA, NULL, 0, &all);
  if (r == 0 && (!all.found || all.resident || all.runs.data_clusters != all.runs.next_vcn ||
                 all.runs.next_vcn * cs < all.data_size))
    r = fsmap_fail(vol, EINVAL, "the $MFT's $DATA, gathered through its attribute list, "
                   "has holes or does not cover its %llu bytes",
                   (unsigned long long)all.data_size);
  if (r == 0) {
    ntfs_runs_free(&st->mft);
    st->mft = all.runs;
    memset(&all.runs, 0, sizeof all.runs);
    st->mft_records = all.data_size / st->record_size;
  }
  ntfs_stream_free(&all);
  return r;
}

/* The $Volume dirty flag, and a hiberfil.sys that starts with "hibr"
 * (Windows hibernated, or shut down with Fast Startup, which hibernates
 * the kernel with the volume mounted). A volume whose $Volume cannot be
 * read counts as unclean too: only writes depend on it. */
static int ntfs_note_unclean(struct fsmap_volume *vol)
{
  struct ntfs_stream s;
  int r = ntfs_stream_load(vol, NTFS_VOLUME_RECORD, NTFS_AT_VOLUME_INFORMATION, NULL, 0, &s);
  bool readable = r == 0 && s.found && s.resident && s.data_size >= 12 && s.value;
  uint16_t flags = readable ? get_le16(s.value + 10) : 0;
  ntfs_stream_free(&s);
  if (!readable)
    vhd_snprintf(vol->unclean, sizeof vol->unclean, "its $Volume information is unreadable");
  else if (flags & NTFS_VOLUME_DIRTY)
    vhd_snprintf(vol->unclean, sizeof vol->unclean, "the volume is marked dirty (run chkdsk "
                 "or mount it cleanly first)");
  if (vol->unclean[0])
    return 0;
  struct fsmap_file hib;
  struct fsmap_extents e = { 0 };
  uint8_t head[4];
  if (fsmap_lookup(vol, "hiberfil.sys", &hib) == 0 && !hib.directory && hib.size >= 4 &&
      fsmap_map(vol, &hib, &e) == 0 && e.count && e.v[0].state == FSMAP_DATA &&
      fsmap_read(vol, e.v[0].volume_offset, head, sizeof head) == 0 &&
      (memcmp(head, "hibr", 4) == 0 || memcmp(head, "HIBR", 4) == 0))
    vhd_snprintf(vol->unclean, sizeof vol->unclean, "Windows is hibernated on it (Fast "
                 "Startup or hibernation: shut Windows down fully first)");
  fsmap_extents_free(&e);
  vol->error[0] = '\0';   /* a missing hiberfil.sys is the normal case */
  return 0;
}

int fsmap_ntfs_mount(struct fsmap_volume *vol, const uint8_t *boot)
{
  uint32_t bps = get_le16(boot + 0x0b);
  uint8_t spc_code = boot[0x0d];
  if (bps < 512 || bps > 4096 || (bps & (bps - 1)))
    return fsmap_fail(vol, EINVAL, "NTFS boot sector: %u bytes per sector", bps);
  unsigned shift = 256u - spc_code;   /* codes above 0x80: 2^-(signed code) */
  uint64_t spc = spc_code <= 0x80 ? spc_code : shift <= 20 ? 1ull << shift : 0;
  uint64_t cs = bps * spc;
  if (spc == 0 || (spc & (spc - 1)) || cs > NTFS_CLUSTER_MAX)
    return fsmap_fail(vol, EINVAL, "NTFS boot sector: sectors per cluster code 0x%02x with "
                      "%u-byte sectors", spc_code, bps);
  uint64_t sectors = get_le64(boot + 0x28);
  if (sectors > vol->size / bps)
    return fsmap_fail(vol, EINVAL, "NTFS boot sector: the file system (%llu sectors of %u "
                      "bytes) is larger than its partition (%llu bytes)",
                      (unsigned long long)sectors, bps, (unsigned long long)vol->size);
  uint64_t clusters = sectors * bps / cs;
  uint64_t mft_lcn = get_le64(boot + 0x30);
  if (mft_lcn >= clusters)
    return fsmap_fail(vol, EINVAL, "NTFS boot sector: $MFT cluster %llu is outside the "
                      "volume's %llu clusters", (unsigned long long)mft_lcn,
                      (unsigned long long)clusters);
  uint32_t record = ntfs_record_bytes(boot[0x40], (uint32_t)cs, NTFS_RECORD_MAX);
  if (!record)
    return fsmap_fail(vol, EINVAL, "NTFS boot sector: MFT record size code 0x%02x",
                      boot[0x40]);
  if (!ntfs_record_bytes(boot[0x44], (uint32_t)cs, UINT32_MAX))
    return fsmap_fail(vol, EINVAL, "NTFS boot sector: index block size code 0x%02x",
                      boot[0x44]);
  struct ntfs_state *st = vhd_calloc(1, sizeof *st);
  if (!st)
    return fsmap_fail(vol, ENOMEM, "out of memory");
  st->clusters = clusters;
  st->record_size = record;
  vol->priv = st;
  vol->kind = FSMAP_NTFS;
  vol->sector_size = bps;
  vol->cluster_size = (uint32_t)cs;
  vol->root_id = NTFS_ROOT_RECORD;
  vol->clusters = clusters > UINT32_MAX ? UINT32_MAX : (uint32_t)clusters;
  int r = ntfs_load_mft(vol, st, mft_lcn);
  if (r == 0)
    r = ntfs_note_unclean(vol);
  if (r < 0) {
    fsmap_ntfs_unmount(vol);
    vol->priv = NULL;
  }
  return r;
}

/* Refuses data the loader cannot serve as plain clusters. */
static int ntfs_check_data(struct fsmap_volume *vol, unsigned long long n,
                           const struct ntfs_stream *s, uint64_t need)
{
  if (!s->found)
    return fsmap_fail(vol, EINVAL, "MFT record %llu has no unnamed $DATA attribute", n);
  if (s->flags & NTFS_ATTR_COMPRESSED)
    return fsmap_fail(vol, ENOTSUP, "MFT record %llu is a compressed file (attribute flag "
                      "0x%04x): its clusters do not hold its bytes", n,
                      s->flags & NTFS_ATTR_COMPRESSED);
  if (s->flags & NTFS_ATTR_ENCRYPTED)
    return fsmap_fail(vol, ENOTSUP, "MFT record %llu is an encrypted file (attribute flag "
                      "0x4000): its clusters do not hold its bytes", n);
  if (s->flags & NTFS_ATTR_SPARSE)
    return fsmap_fail(vol, ENOTSUP, "MFT record %llu is a sparse file (attribute flag "
                      "0x8000): its holes have no clusters to serve", n);
  if (s->resident && s->data_size)
    return fsmap_fail(vol, ENOTSUP, "MFT record %llu is a resident file: too small to be an "
                      "image (its %llu bytes live inside the MFT record)", n,
                      (unsigned long long)s->data_size);
  if (need > s->runs.next_vcn)
    return fsmap_fail(vol, EINVAL, "MFT record %llu: the run list covers %llu clusters but "
                      "the data size (%llu bytes) needs %llu", n,
                      (unsigned long long)s->runs.next_vcn, (unsigned long long)s->data_size,
                      (unsigned long long)need);
  return 0;
}

int fsmap_ntfs_map(struct fsmap_volume *vol, const struct fsmap_file *f,
                   struct fsmap_extents *out)
{
  unsigned long long n = (unsigned long long)f->id;
  int r = ntfs_refuse_reparse(vol, f->id);
  if (r < 0)
    return r;
  struct ntfs_stream s;
  r = ntfs_stream_load(vol, f->id, NTFS_AT_DATA, NULL, 0, &s);
  uint64_t cs = vol->cluster_size;
  uint64_t need = s.data_size / cs + (s.data_size % cs != 0);
  if (r == 0)
    r = ntfs_check_data(vol, n, &s, need);
  for (size_t i = 0; r == 0 && i < s.runs.count && s.runs.v[i].vcn < need; i++) {
    const struct ntfs_run *run = &s.runs.v[i];
    uint64_t count = need - run->vcn < run->count ? need - run->vcn : run->count;
    if (run->hole)
      r = fsmap_fail(vol, ENOTSUP, "MFT record %llu is a sparse file (a hole at cluster "
                     "%llu of the file)", n, (unsigned long long)run->vcn);
    else
      r = fsmap_extents_add(vol, out, run->lcn * cs, count * cs, FSMAP_DATA);
  }
  ntfs_stream_free(&s);
  return r < 0 ? r : fsmap_extents_check_overlap(vol, out);
}

void fsmap_ntfs_unmount(struct fsmap_volume *vol)
{
  struct ntfs_state *st = vol->priv;
  if (!st)
    return;
  ntfs_runs_free(&st->mft);
  vhd_free(st);
  vol->priv = NULL;
}
