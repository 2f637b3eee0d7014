# SPDX-License-Identifier: BSD-3-Clause
# Optional parts of the build and the summary configure prints.
#
# vhd_part(<option> <description> <found> <missing> <debian-package>)
#   <option> is AUTO (the default: built when <found> is true), ON (an error
#   naming <debian-package> when <found> is false) or OFF. AUTO is decided
#   afresh at every configure, so a part left out for a missing dependency
#   is built once the package is installed. Sets <option>_BUILD and adds a
#   line to the summary.
# vhd_summary_line(<text>)   a line of its own in the summary
# vhd_print_summary()

function(vhd_summary_line text)
  set_property(GLOBAL APPEND PROPERTY VHD_SUMMARY "${text}")
endfunction()

function(vhd_part option description found missing package)
  set(${option} AUTO CACHE STRING "${description}: AUTO, ON or OFF")
  set_property(CACHE ${option} PROPERTY STRINGS AUTO ON OFF)
  set(value "${${option}}")
  string(TOUPPER "${value}" value)
  if(value STREQUAL "AUTO")
    if(found)
      set(build TRUE)
      set(why "")
    else()
      set(build FALSE)
      set(why " (${missing}, install the Debian package ${package})")
    endif()
  elseif(${option})
    if(NOT found)
      message(FATAL_ERROR "${option}=ON, but ${missing}: install the Debian package "
        "${package}, or configure with -D${option}=AUTO or OFF")
    endif()
    set(build TRUE)
    set(why "")
  else()
    set(build FALSE)
    set(why " (-D${option}=${${option}})")
  endif()
  set(${option}_BUILD ${build} PARENT_SCOPE)
  if(build)
    vhd_summary_line("${description}: yes")
  else()
    vhd_summary_line("${description}: no${why}")
  endif()
endfunction()

function(vhd_print_summary)
  get_property(lines GLOBAL PROPERTY VHD_SUMMARY)
  message(STATUS "libvhd ${PROJECT_VERSION} will build:")
  foreach(line IN LISTS lines)
    message(STATUS "  ${line}")
  endforeach()
endfunction()
