/* SPDX-License-Identifier: BSD-3-Clause */
/* The firmware side of Secure Boot: reads the SecureBoot and SetupMode
 * variables, finds shim's SHIM_LOCK protocol, and hands sb_policy.c a
 * check that calls it (docs/efi-loader.md, "Secure Boot"). */
#ifndef VHDBOOT_SECURE_BOOT_H
#define VHDBOOT_SECURE_BOOT_H

#include "sb_policy.h"

/* The verifier for this boot and, for SB_SHIM, the call into shim. */
void secure_boot_check(struct sb_check *out);

#endif
