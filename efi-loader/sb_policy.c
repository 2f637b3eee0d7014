/* SPDX-License-Identifier: BSD-3-Clause */
/* Secure Boot decisions (see sb_policy.h). */
#include "sb_policy.h"

#include "error.h"
#include "platform.h"

bool sb_enforced(const struct sb_facts *f)
{
  return f->have_secure_boot && f->secure_boot == 1 &&
         !(f->have_setup_mode && f->setup_mode != 0);
}

enum sb_verifier sb_choose(const struct sb_facts *f)
{
  if (!sb_enforced(f))
    return SB_OFF;
  return f->shim_present ? SB_SHIM : SB_FIRMWARE;
}

const char *sb_verifier_text(enum sb_verifier how)
{
  switch (how) {
  case SB_FIRMWARE:
    return " under Secure Boot (verified by the firmware against db and dbx)";
  case SB_SHIM:
    return " under Secure Boot (verified by shim against db and MOK)";
  case SB_OFF:
    break;
  }
  return "";
}

static bool is_refusal(uint64_t status)
{
  return status == SB_EFI_SECURITY_VIOLATION || status == SB_EFI_ACCESS_DENIED;
}

int sb_check_program(const struct sb_check *c, const void *buf, size_t size,
                     const char *path, const char *image)
{
  if (c->how != SB_SHIM)
    return 0;
  /* Verify takes a 32-bit size; a larger program cannot be checked, and
   * what cannot be checked is not started. */
  if (size > UINT32_MAX || !c->shim_verify)
    return vhd_error(EACCES, "%s in %s: refused by Secure Boot (shim cannot verify a "
                     "program of %llu bytes)", path, image, (unsigned long long)size);
  uint64_t st = c->shim_verify(c->ctx, buf, (uint32_t)size);
  if (st == 0)
    return 0;
  if (is_refusal(st))
    return vhd_error(EACCES, "%s in %s: refused by Secure Boot (shim: not signed by a key "
                     "in db or MOK, or revoked by dbx, MOKX or SBAT)", path, image);
  return vhd_error(EACCES, "%s in %s: refused by Secure Boot (shim cannot verify it: "
                   "status 0x%llx, not a valid signed PE image)", path, image,
                   (unsigned long long)st);
}

int sb_explain_load_failure(enum sb_verifier how, uint64_t status, const char *path,
                            const char *image)
{
  if (how == SB_OFF || !is_refusal(status))
    return 0;
  if (how == SB_SHIM)
    return vhd_error(EACCES, "%s in %s: refused by Secure Boot (accepted by shim, but the "
                     "firmware's LoadImage refused it: shims before 16.0 leave LoadImage to "
                     "the firmware, which knows db only)", path, image);
  return vhd_error(EACCES, "%s in %s: refused by Secure Boot (not signed by a key in db, "
                   "or revoked by dbx)", path, image);
}

uint64_t sb_exit_status(bool shim_present, uint64_t status)
{
  if (shim_present && (is_refusal(status) || status == SB_EFI_NOT_FOUND ||
                       status == SB_EFI_INVALID_PARAMETER))
    return SB_EFI_LOAD_ERROR;
  return status;
}
