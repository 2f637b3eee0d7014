# SPDX-License-Identifier: BSD-3-Clause
# x86-64 rules for efi-app.cmake.
#
# GNU_EFI_USE_MS_ABI makes EFIAPI the Microsoft calling convention, so calls
# into the firmware are direct calls and, more importantly, the protocol
# functions the loader implements (BlockIo ReadBlocks ...) are called
# correctly by the firmware. efi_main itself stays System V: gnu-efi's crt0
# converts. The red zone must be off because firmware interrupt handlers
# run on the same stack.
set(EFI_ARCH_CFLAGS -mno-red-zone -DGNU_EFI_USE_MS_ABI)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  # gcc needs it for Microsoft-ABI variadic calls (gnu-efi's uefi_call_wrapper
  # and ms_va_list); clang lays out ms_abi calls itself and has no such flag.
  list(APPEND EFI_ARCH_CFLAGS -maccumulate-outgoing-args)
endif()
set(EFI_CRT0 ${GNU_EFI_LIB_DIR}/crt0-efi-x86_64.o)
set(EFI_LDS ${GNU_EFI_LIB_DIR}/elf_x86_64_efi.lds)
set(EFI_LIBGNUEFI ${GNU_EFI_LIB_DIR}/libgnuefi.a)
set(EFI_LIBEFI ${GNU_EFI_LIB_DIR}/libefi.a)
set(EFI_LDFLAGS "")
set(EFI_OBJCOPY_SECTIONS -j .text -j .sdata -j .data -j .dynamic -j .dynsym
    -j .rel -j .rela -j .rel.* -j .rela.* -j .reloc)
# objcopy's names for the ELF objects (the .sbat object is made from a file).
set(EFI_ELF_FORMAT elf64-x86-64)
set(EFI_ELF_ARCH i386:x86-64)
set(EFI_OBJCOPY_APP --target efi-app-x86_64 --subsystem=10)
set(EFI_OBJCOPY_BSDRV --target efi-bsdrv-x86_64 --subsystem=11)
set(EFI_BOOT_FILE BOOTX64.EFI)
# AArch64 (arch-aarch64.cmake, not written yet) would set the same variables:
# no red-zone flag, crt0-efi-aarch64.o / elf_aarch64_efi.lds, and, with
# binutils older than 2.38, "-O binary" instead of an efi-app target since
# gnu-efi's AArch64 crt0 carries its own PE header; BOOTAA64.EFI.
