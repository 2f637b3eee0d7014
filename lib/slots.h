/* SPDX-License-Identifier: BSD-3-Clause */
/* Free block slots inside an image file: space that held a block and that
 * no BAT entry references any more, kept so that a new block fills the
 * lowest one before the file grows. Used by the VHD and VHDX drivers.
 *
 * Crash safety: a slot freed during a session is "freed" until the BAT
 * change that freed it is durable (the driver's flush calls
 * slots_commit); only then is it "reusable". Slots found at open are
 * reusable at once: the BAT read from the file references none of them.
 * A slot's old bytes may still be there, so whoever takes one makes it
 * read as zeros first (slots_take_lowest's caller punches or writes). */
#ifndef LIBVHD_SLOTS_H
#define LIBVHD_SLOTS_H

#include "platform.h"

struct slot_list {
  uint64_t *offset;
  size_t count, cap;
};

struct free_slots {
  struct slot_list freed;      /* the durable BAT may still point here */
  struct slot_list reusable;   /* nothing durable points here */
};

/* -ENOMEM (no message) when the list cannot grow: the slot is then only
 * not reused, never lost from the file's point of view. */
int slots_push(struct slot_list *l, uint64_t offset);
/* The lowest reusable slot, removed from the list; false when none. */
bool slots_take_lowest(struct free_slots *f, uint64_t *offset);
/* The BAT that freed the "freed" slots is durable now. */
void slots_commit(struct free_slots *f);
/* Forget every slot at or past end (the file was cut there). */
void slots_drop_from(struct free_slots *f, uint64_t end);
/* Forget everything (a maintenance operation rearranges the file). */
void slots_clear(struct free_slots *f);
size_t slots_count(const struct free_slots *f);
/* Punch every reusable slot (nothing durable references them), so the
 * host gets their space back; -ENOTSUP is not an error. *n gets how
 * many slots were punched. */
struct vhd_io;
int slots_punch_reusable(const struct free_slots *f, struct vhd_io *io, uint64_t bytes,
                         uint64_t *n);
/* Punch the n places compact's moves left (driver.h's pack_plan): no
 * durable table entry references them. A host that cannot punch is not an
 * error. */
struct pack_range;
int slots_punch_released(struct vhd_io *io, const struct pack_range *places, size_t n);
/* How many slots of `bytes` each still hold data in their whole 4 KiB
 * host pages (space the host spends on nothing: check calls that a leak)
 * and how many are holes there (only file size, which new blocks and
 * compact take back). A backend that cannot report holes is read: zeros
 * are what a punch leaves there. -errno on a read error. */
int slots_census(const struct free_slots *f, struct vhd_io *io, uint64_t bytes,
                 uint64_t *held, uint64_t *punched);
void slots_free(struct free_slots *f);

#endif
