/* Room for growth in rw mode (dynamic and differencing images).
 *
 * New blocks go at the end of the image file, but the file cannot grow
 * once the virtual disk is installed (that would need the host's file
 * system driver). So before installing it, while the firmware's FAT driver
 * may still be used, the loader grows the host file by a reserve and maps
 * that space too; the core then "grows" the file inside it (efi_io.c).
 *
 * Layout of a host file with a reserve (P = physical size, T = trailer
 * bytes: 512 for VHD, whose footer must be the file's last sector, else 0):
 *
 *   [0, L)            the image as libvhd sees it (L = logical size)
 *   [L, P - T - 512)  free reserve (reads as zeros once it becomes file)
 *   [P - T - 512, P - T)  the reserve record: "VHDBOOTR", P, L, T, CRC-32
 *   [P - T, P)        a copy of the image's trailer (the VHD footer),
 *                     rewritten whenever the core writes its footer
 *
 * Every other reader (libvhd, qemu-img, Hyper-V) sees a valid image whose
 * unused reserve is a gap before the footer (reported as leaked space by
 * vhdtool check). The next boot finds the record and reuses the reserve
 * instead of growing the file again. A record whose P is not the file's
 * size, or whose trailer copy differs from [L - T, L), is ignored.
 */
#ifndef VHDBOOT_RESERVE_H
#define VHDBOOT_RESERVE_H

#include <stdbool.h>
#include <stdint.h>

#define RESERVE_RECORD_SIZE 512u

struct efi_file;
struct vhd_info;
struct host_volume;

void reserve_record_encode(uint8_t rec[RESERVE_RECORD_SIZE], uint64_t phys, uint64_t logical,
                           uint32_t tail);

/* Look for a valid record at the end of f; when found, f->size becomes
 * the logical size and f->record_off/tail are set. */
bool reserve_apply_record(struct efi_file *f);

/* An upper bound of the bytes new blocks could take: "enough for the
 * whole virtual disk". */
uint64_t reserve_default(const struct vhd_info *info);

/* Make sure f's host file has `want` bytes of free reserve, growing it
 * through the firmware's file system if needed (the file must not be open
 * in the core: this changes its size). tail: T above. *grown gets the
 * bytes added. */
int reserve_ensure(struct host_volume *vol, struct efi_file *f, uint64_t want, uint32_t tail,
                   uint64_t *grown);

/* After reopening f read-write: limit growth to the reserve and keep the
 * record and trailer copy up to date. */
void reserve_attach(struct efi_file *f, uint32_t tail, const uint8_t cookie[8]);

#endif
