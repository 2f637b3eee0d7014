/* SPDX-License-Identifier: BSD-3-Clause */
/* The UEFI loader's Secure Boot decisions (efi-loader/sb_policy.c) on the
 * host, with a stand-in for shim's SHIM_LOCK protocol.
 *
 * Booting through the real shim needs the owner's key in MokList, a
 * boot-services-only variable that only MokManager (a person at the
 * console) or a firmware-side tool can write; the TCG tests therefore
 * cover the firmware's own verification (tests/efi/test_secure_boot.py)
 * and this test covers the shim path: when shim is asked, with exactly
 * the program's bytes, and that its "no" is never overridden. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vhd.h"

#include "../../efi-loader/sb_policy.c"

/* A stand-in for shim: accepts a buffer only when it starts with "SIGNED",
 * and records what it was asked. */
struct fake_shim {
  unsigned calls;
  const void *seen_buf;
  uint32_t seen_size;
  uint64_t refusal; /* the status it returns for an unsigned buffer */
};

static uint64_t fake_verify(void *ctx, const void *buffer, uint32_t size)
{
  struct fake_shim *shim = ctx;
  shim->calls++;
  shim->seen_buf = buffer;
  shim->seen_size = size;
  if (size >= 6 && memcmp(buffer, "SIGNED", 6) == 0)
    return 0;
  return shim->refusal;
}

static const struct sb_facts ON = { true, 1, true, 0, false };

Test(sb_policy, enforced_only_with_secure_boot_1_outside_setup_mode)
{
  struct sb_facts f = ON;
  cr_expect(sb_enforced(&f));
  f.have_setup_mode = false; /* firmware without SetupMode: trust SecureBoot */
  cr_expect(sb_enforced(&f));
  f = ON;
  f.setup_mode = 1;
  cr_expect(!sb_enforced(&f), "setup mode enforces nothing");
  f = ON;
  f.secure_boot = 0;
  cr_expect(!sb_enforced(&f));
  f = ON;
  f.secure_boot = 2;
  cr_expect(!sb_enforced(&f), "only the value 1 means enforced");
  f = ON;
  f.have_secure_boot = false;
  cr_expect(!sb_enforced(&f), "no SecureBoot variable: an old firmware, nothing enforced");
}

Test(sb_policy, shim_verifies_when_it_started_the_loader)
{
  struct sb_facts f = ON;
  cr_expect_eq(sb_choose(&f), SB_FIRMWARE);
  f.shim_present = true;
  cr_expect_eq(sb_choose(&f), SB_SHIM);
  f.secure_boot = 0;
  cr_expect_eq(sb_choose(&f), SB_OFF, "shim without Secure Boot changes nothing");
  cr_expect_str_empty(sb_verifier_text(SB_OFF));
  cr_expect(strstr(sb_verifier_text(SB_SHIM), "Secure Boot") &&
            strstr(sb_verifier_text(SB_SHIM), "shim"));
  cr_expect(strstr(sb_verifier_text(SB_FIRMWARE), "Secure Boot") &&
            strstr(sb_verifier_text(SB_FIRMWARE), "firmware"));
}

Test(sb_policy, shim_is_asked_with_the_exact_bytes_and_accepts_signed)
{
  struct fake_shim shim = { .refusal = SB_EFI_SECURITY_VIOLATION };
  struct sb_check c = { SB_SHIM, true, fake_verify, &shim };
  static const char prog[] = "SIGNED program bytes";
  cr_assert_eq(sb_check_program(&c, prog, sizeof prog, "\\EFI\\BOOT\\BOOTX64.EFI",
                                "\\VHD\\d.vhdx"), 0);
  cr_expect_eq(shim.calls, 1);
  cr_expect_eq(shim.seen_buf, prog);
  cr_expect_eq(shim.seen_size, sizeof prog);
}

Test(sb_policy, shim_refusal_is_one_line_naming_program_image_and_reason)
{
  struct fake_shim shim = { .refusal = SB_EFI_SECURITY_VIOLATION };
  struct sb_check c = { SB_SHIM, true, fake_verify, &shim };
  static const char prog[] = "MZ unsigned";
  int r = sb_check_program(&c, prog, sizeof prog, "\\EFI\\BOOT\\BOOTX64.EFI",
                           "\\VHD\\d.vhdx");
  cr_assert_eq(r, -EACCES);
  cr_expect_eq(shim.calls, 1);
  const char *msg = vhd_last_error();
  cr_expect(strstr(msg, "\\EFI\\BOOT\\BOOTX64.EFI in \\VHD\\d.vhdx: refused by Secure Boot"),
            "%s", msg);
  cr_expect(strstr(msg, "MOK"), "%s", msg);
  cr_expect(!strchr(msg, '\n'), "one line: %s", msg);
  /* shim's SBAT and MOKX refusals come as EFI_ACCESS_DENIED. */
  shim.refusal = SB_EFI_ACCESS_DENIED;
  cr_expect_eq(sb_check_program(&c, prog, sizeof prog, "\\A.EFI", "i.vhd"), -EACCES);
}

Test(sb_policy, any_other_shim_error_refuses_too)
{
  /* EFI_UNSUPPORTED: shim could not parse the PE header. Not "refused by
   * a key", but never a reason to start the program. */
  struct fake_shim shim = { .refusal = SB_EFI_ERROR(3) };
  struct sb_check c = { SB_SHIM, true, fake_verify, &shim };
  cr_assert_eq(sb_check_program(&c, "junk", 4, "\\A.EFI", "i.vhd"), -EACCES);
  const char *msg = vhd_last_error();
  cr_expect(strstr(msg, "\\A.EFI in i.vhd: refused by Secure Boot (shim cannot verify it: "
                        "status 0x8000000000000003"), "%s", msg);
}

Test(sb_policy, too_big_for_shim_is_refused_unread)
{
  if (sizeof(size_t) <= 4)
    cr_skip_test("size_t cannot exceed Verify's 32-bit size here");
  struct fake_shim shim = { .refusal = SB_EFI_SECURITY_VIOLATION };
  struct sb_check c = { SB_SHIM, true, fake_verify, &shim };
  size_t huge = (size_t)UINT32_MAX + 1;
  cr_expect_eq(sb_check_program(&c, "SIGNED", huge, "\\A.EFI", "i.vhd"), -EACCES);
  cr_expect_eq(shim.calls, 0, "a truncated size must never reach Verify");
  struct sb_check no_fn = { SB_SHIM, true, NULL, NULL };
  cr_expect_eq(sb_check_program(&no_fn, "SIGNED", 6, "\\A.EFI", "i.vhd"), -EACCES);
}

Test(sb_policy, firmware_or_off_leaves_the_decision_to_load_image)
{
  struct fake_shim shim = { .refusal = SB_EFI_SECURITY_VIOLATION };
  struct sb_check c = { SB_FIRMWARE, false, fake_verify, &shim };
  cr_expect_eq(sb_check_program(&c, "MZ", 2, "\\A.EFI", "i.vhd"), 0);
  c.how = SB_OFF;
  cr_expect_eq(sb_check_program(&c, "MZ", 2, "\\A.EFI", "i.vhd"), 0);
  cr_expect_eq(shim.calls, 0);
}

Test(sb_policy, load_image_refusal_says_secure_boot_only_when_it_was)
{
  cr_expect_eq(sb_explain_load_failure(SB_FIRMWARE, SB_EFI_ACCESS_DENIED, "\\A.EFI",
                                       "i.vhdx"), -EACCES);
  const char *msg = vhd_last_error();
  cr_expect(strstr(msg, "\\A.EFI in i.vhdx: refused by Secure Boot (not signed by a key in "
                        "db"), "%s", msg);
  cr_expect_eq(sb_explain_load_failure(SB_FIRMWARE, SB_EFI_SECURITY_VIOLATION, "\\A.EFI",
                                       "i.vhdx"), -EACCES);
  cr_expect_eq(sb_explain_load_failure(SB_SHIM, SB_EFI_SECURITY_VIOLATION, "\\A.EFI",
                                       "i.vhdx"), -EACCES);
  cr_expect(strstr(vhd_last_error(), "refused by Secure Boot (accepted by shim"), "%s",
            vhd_last_error());
  /* Secure Boot off, or a failure that is not a refusal: not ours to
   * explain (boot.c reports the status as before). */
  cr_expect_eq(sb_explain_load_failure(SB_OFF, SB_EFI_ACCESS_DENIED, "\\A.EFI", "i"), 0);
  cr_expect_eq(sb_explain_load_failure(SB_FIRMWARE, SB_EFI_ERROR(14), "\\A.EFI", "i"), 0);
  cr_expect_eq(sb_explain_load_failure(SB_FIRMWARE, SB_EFI_ERROR(1), "\\A.EFI", "i"), 0);
}

Test(sb_policy, under_shim_no_status_that_makes_shim_start_something_else)
{
  /* These would make shim start MokManager or its default loader. */
  uint64_t diverted[] = { SB_EFI_ACCESS_DENIED, SB_EFI_SECURITY_VIOLATION, SB_EFI_NOT_FOUND,
                          SB_EFI_INVALID_PARAMETER };
  for (size_t i = 0; i < sizeof diverted / sizeof diverted[0]; i++) {
    cr_expect_eq(sb_exit_status(true, diverted[i]), SB_EFI_LOAD_ERROR, "status %zu", i);
    cr_expect_eq(sb_exit_status(false, diverted[i]), diverted[i], "without shim: as it was");
  }
  /* Everything else passes through: success, and errors shim ignores. */
  cr_expect_eq(sb_exit_status(true, 0), 0);
  cr_expect_eq(sb_exit_status(true, SB_EFI_ERROR(27)), SB_EFI_ERROR(27));
  cr_expect_eq(sb_exit_status(true, SB_EFI_ERROR(9)), SB_EFI_ERROR(9));
}
