/* SPDX-License-Identifier: BSD-3-Clause */
/* Secure Boot: who verifies the boot program inside the virtual disk, and
 * what the loader says when it is refused.
 *
 * Plain C with no firmware types, so tests/unit/test_efi_sb_policy.c can
 * drive every decision with a stand-in for shim's protocol; secure_boot.c
 * gathers the facts from the firmware and boot.c applies the verdict.
 *
 * The rule: with Secure Boot enforced, nothing from the image is started
 * unless a verifier the platform owner trusts accepted it. Started by the
 * firmware, that is the firmware's own LoadImage (db/dbx). Started by shim,
 * LoadImage of the firmware knows nothing of the owner's MOK keys, so
 * shim's SHIM_LOCK Verify() is asked first, on the very bytes then handed
 * to LoadImage (which the firmware, or shim's LoadImage hook, checks
 * again). */
#ifndef VHDBOOT_SB_POLICY_H
#define VHDBOOT_SB_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* EFI_STATUS values the decisions need (UEFI spec, appendix D). */
#define SB_EFI_ERROR(code) ((UINT64_C(1) << 63) | (code))
#define SB_EFI_LOAD_ERROR SB_EFI_ERROR(1)
#define SB_EFI_INVALID_PARAMETER SB_EFI_ERROR(2)
#define SB_EFI_NOT_FOUND SB_EFI_ERROR(14)
#define SB_EFI_ACCESS_DENIED SB_EFI_ERROR(15)
#define SB_EFI_SECURITY_VIOLATION SB_EFI_ERROR(26)

/* What the firmware says about itself. A variable the firmware does not
 * have is "absent", which is not the same as 0 for SetupMode. */
struct sb_facts {
  bool have_secure_boot; /* the SecureBoot variable exists */
  uint8_t secure_boot;   /* its value: 1 = enforced */
  bool have_setup_mode;
  uint8_t setup_mode;    /* 1: no platform key, nothing is enforced */
  bool shim_present;     /* SHIM_LOCK is installed: shim started us */
};

enum sb_verifier {
  SB_OFF,      /* Secure Boot not enforced: load as always */
  SB_FIRMWARE, /* the firmware's LoadImage checks db/dbx */
  SB_SHIM,     /* shim's Verify (db + MOK, dbx + MOKX, SBAT), then LoadImage */
};

/* shim's Verify(buffer, size) behind a callback (the real protocol in the
 * loader, a fake in the unit test). Returns an EFI_STATUS. */
typedef uint64_t (*sb_verify_fn)(void *ctx, const void *buffer, uint32_t size);

struct sb_check {
  enum sb_verifier how;
  bool shim_present;        /* shim started the loader, Secure Boot or not */
  sb_verify_fn shim_verify; /* required when how == SB_SHIM */
  void *ctx;
};

/* Secure Boot is enforced when SecureBoot is 1 and the machine is not in
 * setup mode (a missing SetupMode counts as 0, as shim counts it). */
bool sb_enforced(const struct sb_facts *f);
enum sb_verifier sb_choose(const struct sb_facts *f);

/* Words for the start line: "" when off, else " under Secure Boot (...)"
 * naming the verifier. */
const char *sb_verifier_text(enum sb_verifier how);

/* Before LoadImage: with SB_SHIM, shim must accept the program's bytes.
 * 0 to go on, or -EACCES with one message naming the program (path), the
 * image it came from and the reason (vhd_last_error). */
int sb_check_program(const struct sb_check *c, const void *buf, size_t size,
                     const char *path, const char *image);

/* After LoadImage failed with status: when Secure Boot made it fail, set
 * the message saying so and return -EACCES; otherwise return 0 (the caller
 * reports the failure as it always did). */
int sb_explain_load_failure(enum sb_verifier how, uint64_t status, const char *path,
                            const char *image);

/* The status the loader returns to whoever started it. shim reads a
 * second stage's EFI_ACCESS_DENIED and EFI_SECURITY_VIOLATION as "that
 * binary is not trusted" and starts MokManager (a person at the console),
 * and EFI_NOT_FOUND and EFI_INVALID_PARAMETER as "no such second stage"
 * and starts its default loader, which may be this loader again. Under
 * shim those become EFI_LOAD_ERROR, after which shim returns to the
 * firmware and the firmware tries its next boot option. */
uint64_t sb_exit_status(bool shim_present, uint64_t status);

#endif
