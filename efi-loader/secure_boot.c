/* SPDX-License-Identifier: BSD-3-Clause */
/* Secure Boot facts from the firmware (see secure_boot.h). */
#include "secure_boot.h"
#include "efi_env.h"

/* shim's protocol, 605dab50-e046-4300-abb6-3dd810dd8b23. shim is built
 * from plain C: on x86-64 its functions take the System V convention, not
 * the Microsoft one EFIAPI means here. Only Verify is used; the other
 * members are declared so the layout is right. */
#if defined(__x86_64__)
#define SHIM_CALL __attribute__((sysv_abi))
#else
#define SHIM_CALL
#endif
struct shim_lock {
  EFI_STATUS SHIM_CALL (*verify)(void *buffer, UINT32 size);
  void *hash;
  void *context;
};
static EFI_GUID guid_shim_lock = { 0x605dab50, 0xe046, 0x4300,
                                   { 0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23 } };
static EFI_GUID guid_global_variable = EFI_GLOBAL_VARIABLE;

static bool read_u8(CHAR16 *name, uint8_t *value)
{
  UINT32 attr;
  UINTN size = 1;
  return efi_rt->GetVariable(name, &guid_global_variable, &attr, &size, value) ==
             EFI_SUCCESS && size == 1;
}

static uint64_t call_shim(void *ctx, const void *buffer, uint32_t size)
{
  struct shim_lock *shim = ctx;
  return shim->verify((void *)buffer, size);
}

void secure_boot_check(struct sb_check *out)
{
  struct sb_facts f = { 0 };
  f.have_secure_boot = read_u8(L"SecureBoot", &f.secure_boot);
  f.have_setup_mode = read_u8(L"SetupMode", &f.setup_mode);
  struct shim_lock *shim = NULL;
  f.shim_present = efi_bs->LocateProtocol(&guid_shim_lock, NULL, (void **)&shim) ==
                       EFI_SUCCESS && shim && shim->verify;
  out->how = sb_choose(&f);
  out->shim_present = f.shim_present;
  out->shim_verify = f.shim_present ? call_shim : NULL;
  out->ctx = shim;
}
