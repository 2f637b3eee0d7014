# SPDX-License-Identifier: BSD-3-Clause
# Building UEFI applications with GNU-EFI (Debian's gnu-efi package).
#
# Sources are compiled with the firmware's calling convention and no C
# library, linked as a position-independent shared object against gnu-efi's
# crt0 and linker script, and objcopy turns that into a PE/COFF image.
# Everything that depends on the CPU lives in arch-<arch>.cmake; another
# architecture is one more such file, nothing else changes.
#
# Provides:
#   EFI_ARCH            x86_64 (or "" when unsupported here)
#   EFI_BOOT_FILE       the removable-media boot file name, e.g. BOOTX64.EFI
#   EFI_TOOLCHAIN_OK    TRUE when headers, crt0, linker script and library exist
#   efi_target_flags(<target>)   compile flags for UEFI code on any target
#   efi_add_image(<target> OUTPUT <file> OBJECT_LIBRARIES <lib>...
#                 [SUBSYSTEM application|bsdriver] [LIBEFI] [SBAT <csv>])
#                 SBAT: the file becomes the image's .sbat section (shim
#                 reads it to decide whether the binary is revoked)

string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _efi_cpu)
if(_efi_cpu MATCHES "^(x86_64|amd64)$")
  set(EFI_ARCH x86_64)
elseif(_efi_cpu MATCHES "^(aarch64|arm64)$")
  set(EFI_ARCH aarch64)
else()
  set(EFI_ARCH "")
endif()

set(EFI_TOOLCHAIN_OK FALSE)
set(EFI_TOOLCHAIN_PROBLEM "")
if(NOT EFI_ARCH OR NOT EXISTS ${CMAKE_CURRENT_LIST_DIR}/arch-${EFI_ARCH}.cmake)
  set(EFI_TOOLCHAIN_PROBLEM "no UEFI build rules for the ${CMAKE_SYSTEM_PROCESSOR} processor yet")
  return()
endif()

find_path(GNU_EFI_INCLUDE_DIR efi.h PATH_SUFFIXES efi)
find_path(GNU_EFI_LIB_DIR crt0-efi-${EFI_ARCH}.o
  PATHS /usr/lib /usr/lib64 /usr/local/lib /usr/local/lib64
  PATH_SUFFIXES gnuefi NO_DEFAULT_PATH)
include(${CMAKE_CURRENT_LIST_DIR}/arch-${EFI_ARCH}.cmake)
if(NOT GNU_EFI_INCLUDE_DIR)
  set(EFI_TOOLCHAIN_PROBLEM "gnu-efi's efi.h not found")
  return()
endif()

foreach(_f ${GNU_EFI_INCLUDE_DIR}/${EFI_ARCH}/efibind.h ${EFI_CRT0} ${EFI_LDS} ${EFI_LIBGNUEFI})
  if(NOT EXISTS "${_f}")
    set(EFI_TOOLCHAIN_PROBLEM "gnu-efi for ${EFI_ARCH} is incomplete: ${_f} is missing")
    return()
  endif()
endforeach()
# GNU ld and objcopy whatever the compiler: gnu-efi's linker script is
# written for GNU ld, and only GNU objcopy writes a PE image from the ELF
# (with clang, CMake picks ld.lld and llvm-objcopy, which cannot).
find_program(EFI_LD NAMES ld.bfd ld)
find_program(EFI_OBJCOPY NAMES objcopy)
if(NOT EFI_LD OR NOT EFI_OBJCOPY)
  set(EFI_TOOLCHAIN_PROBLEM "GNU objcopy or ld not found (Debian package binutils)")
  return()
endif()
set(EFI_TOOLCHAIN_OK TRUE)

# The compiler's own headers (stdint.h, stdarg.h ...) are the only system
# headers UEFI code may see: there is no C library underneath.
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=include
  OUTPUT_VARIABLE EFI_CC_INCLUDE OUTPUT_STRIP_TRAILING_WHITESPACE)

function(efi_target_flags target)
  target_compile_options(${target} PRIVATE
    -ffreestanding -nostdinc -isystem ${EFI_CC_INCLUDE}
    -fpic -fshort-wchar -fno-stack-protector -fno-stack-check
    -fno-strict-aliasing -fno-sanitize=all -fno-omit-frame-pointer
    ${EFI_ARCH_CFLAGS})
  target_include_directories(${target} SYSTEM PRIVATE
    ${GNU_EFI_INCLUDE_DIR} ${GNU_EFI_INCLUDE_DIR}/${EFI_ARCH}
    ${GNU_EFI_INCLUDE_DIR}/protocol)
  # -fpic is given above; CMake must not add its own PIE/PIC variants.
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
endfunction()

function(efi_add_image target)
  cmake_parse_arguments(A "LIBEFI" "OUTPUT;SUBSYSTEM;SBAT" "OBJECT_LIBRARIES" ${ARGN})
  if(NOT A_SUBSYSTEM OR A_SUBSYSTEM STREQUAL "application")
    set(kind ${EFI_OBJCOPY_APP})
  else()
    set(kind ${EFI_OBJCOPY_BSDRV})
  endif()
  set(objs "")
  foreach(lib ${A_OBJECT_LIBRARIES})
    list(APPEND objs $<TARGET_OBJECTS:${lib}>)
  endforeach()
  set(libs ${EFI_LIBGNUEFI})
  if(A_LIBEFI)
    list(PREPEND libs ${EFI_LIBEFI})
  endif()
  get_filename_component(so ${A_OUTPUT} NAME_WE)
  set(sections ${EFI_OBJCOPY_SECTIONS})
  if(A_SBAT)
    # The CSV as an object of its own with a page-aligned .sbat section,
    # which the linker places as an orphan between .reloc and .data: the
    # PE image then has it as a section of its own, as shim wants.
    set(sbat_obj ${CMAKE_CURRENT_BINARY_DIR}/${so}-sbat.o)
    add_custom_command(OUTPUT ${sbat_obj}
      COMMAND ${EFI_OBJCOPY} -I binary -O ${EFI_ELF_FORMAT} -B ${EFI_ELF_ARCH}
              --rename-section .data=.sbat,contents,alloc,load,readonly,data
              ${A_SBAT} ${sbat_obj}.tmp
      COMMAND ${EFI_OBJCOPY} --set-section-alignment .sbat=4096 --strip-all
              --add-section .note.GNU-stack=/dev/null
              --set-section-flags .note.GNU-stack=contents,readonly
              ${sbat_obj}.tmp ${sbat_obj}
      COMMAND ${CMAKE_COMMAND} -E rm -f ${sbat_obj}.tmp
      DEPENDS ${A_SBAT}
      COMMENT "SBAT section for ${A_OUTPUT}"
      VERBATIM)
    list(APPEND objs ${sbat_obj})
    list(APPEND sections -j .sbat)
  endif()
  set(so ${CMAKE_CURRENT_BINARY_DIR}/${so}.so)
  # --no-undefined: a shared object may otherwise keep unresolved symbols,
  # which the firmware would only discover as a crash.
  add_custom_command(OUTPUT ${A_OUTPUT}
    COMMAND ${EFI_LD} -nostdlib -znocombreloc -T ${EFI_LDS} -shared
            -Bsymbolic --no-undefined ${EFI_LDFLAGS} -o ${so} ${EFI_CRT0} ${objs} ${libs}
    COMMAND ${EFI_OBJCOPY} ${sections} ${kind} ${so} ${A_OUTPUT}
    DEPENDS ${objs} ${EFI_CRT0} ${EFI_LDS}
    COMMENT "Linking UEFI image ${A_OUTPUT}"
    VERBATIM COMMAND_EXPAND_LISTS)
  add_custom_target(${target} ALL DEPENDS ${A_OUTPUT})
  add_dependencies(${target} ${A_OBJECT_LIBRARIES})
endfunction()
