/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdboot's reserve: room for new blocks kept after an image inside its
 * own file (docs/efi-handoff.md, "Reserve").
 *
 * vhdboot.efi cannot grow a file once the virtual disk is installed, so in
 * rw mode it grows the file beforehand and records where the image really
 * ends. Layout (P = the file's length, L = the image's logical end, T =
 * trailer bytes: 512 for VHD, whose footer must be the file's last sector,
 * else 0):
 *
 *   [0, L)                the image
 *   [L, P - T - 512)      free reserve
 *   [P - T - 512, P - T)  the record: "VHDBOOTR", version 1, T, P, L, CRC-32
 *   [P - T, P)            VHD only: a copy of the footer at [L - 512, L)
 *
 * Record fields (little-endian): 0 magic[8], 8 version u32 (1), 12 T u32,
 * 16 P u64, 24 L u64, 32 CRC-32 (IEEE) of bytes [0, 32) u32, the rest
 * zero. The record is trusted only when every rule of reserve_find holds
 * and, once the format driver has opened the image at L, no structure the
 * image references reaches the record (image.c): the last sector of an
 * ordinary image is data a guest wrote, and must never move the image's
 * end.
 *
 * The core presents such a file to the drivers at its logical size
 * through a wrapping vhd_io (lib/io/reserve.c), so every front end and
 * the loader share one rule. */
#ifndef LIBVHD_RESERVE_H
#define LIBVHD_RESERVE_H

#include "io.h"

#define RESERVE_RECORD_SIZE 512u
#define RESERVE_VHD_TRAILER 512u

struct reserve_record {
  uint64_t phys;       /* P */
  uint64_t logical;    /* L */
  uint32_t tail;       /* T */
};

static inline uint64_t reserve_record_offset(const struct reserve_record *r)
{
  return r->phys - r->tail - RESERVE_RECORD_SIZE;
}

void reserve_record_encode(uint8_t rec[RESERVE_RECORD_SIZE], const struct reserve_record *r);

/* The default room for an image described by info: what boot programs
 * write before the operating system runs (a random seed, logs), not the
 * whole disk. The one rule for vhdboot.efi and vhd_boot_prepare. */
uint64_t reserve_default_bytes(const struct vhd_info *info);

/* Bytes one new block of such an image takes in the file: the block and
 * its VHD sector bitmap with the padding that puts its data on 4 KiB, or
 * for VHDX the block and the 1 MiB a sector bitmap block or alignment may
 * add. */
uint64_t reserve_block_bytes(const struct vhd_info *info);

/* Looks for a valid record at the end of io (size bytes long) for a file
 * of the given format: the magic, version and CRC, P == size, T as the
 * format wants it (VHD 512, VHDX 0), 512 <= L <= the record's offset, and
 * for VHD the trailer copy equal to the sector before L. A record that
 * breaks any rule is not there (0, no message); 1 when it holds; a failed read is
 * an error (-errno). */
int reserve_find(vhd_io *io, uint64_t size, enum vhd_format format,
                 struct reserve_record *out);

/* Wraps inner (taking it over) so that it reads as the image [0, L) and
 * grows inside the reserve (lib/io/reserve.c). */
int reserve_io_wrap(vhd_io *inner, const struct reserve_record *rec, vhd_io **out);

/* Undoes reserve_io_wrap before anything was written: frees the wrapper
 * and hands back inner. */
vhd_io *reserve_io_unwrap(vhd_io *wrapper);

/* true and *out set when io is a wrapper with its record still in force. */
bool reserve_io_get(vhd_io *io, struct reserve_record *out);

/* Makes the reserve of the image in io hold at least want free bytes of
 * written space: io is a wrapper (its record moves further out) or the
 * plain file of an image that ends at the file's end (it becomes a
 * wrapper in place, so every holder of the pointer sees the image through
 * it). fill(ctx, file, from, to) writes [from, to) of the file with zeros
 * and makes them durable; the record is written after it, last. A VHD's
 * footer stays the file's last sector throughout. *added gets the free
 * bytes gained (0: the reserve was big enough). */
typedef int (*reserve_fill_fn)(void *ctx, vhd_io *file, uint64_t from, uint64_t to);
int reserve_io_grow(vhd_io *io, enum vhd_format format, uint64_t want,
                    reserve_fill_fn fill, void *ctx, uint64_t *added);

/* What reserve_io_grow(io, format, want) would write with zeros: [from,
 * to) of the file (from == to: the reserve is big enough). */
int reserve_io_plan(vhd_io *io, enum vhd_format format, uint64_t want, uint64_t *from,
                    uint64_t *to);

/* The file under a wrapper, or io itself. */
vhd_io *reserve_io_file(vhd_io *io);

/* Gives the unused reserve back: the file is cut at L and becomes an
 * ordinary image (for VHD the footer at L - 512 is then the last sector).
 * *freed gets the bytes given back; 0 when io has no reserve. */
int reserve_io_release(vhd_io *io, uint64_t *freed);

#endif
