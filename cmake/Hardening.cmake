# Hardened optimized builds (issue 11): what a distribution's hardening
# flags give a program that parses bytes from the network.
#
#   _FORTIFY_SOURCE=3 (2 where glibc or the compiler lack 3)  bounds-checked
#                     memcpy/snprintf/... (__*_chk) where sizes are known
#   -fstack-protector-strong    canaries in functions with arrays/addressed locals
#   -fstack-clash-protection    stack probes: a large frame cannot jump the guard page
#   -fcf-protection (x86) / -mbranch-protection=standard (arm64)   CET / BTI+PAC
#   PIE                         executables at a random address (ASLR)
#   -z relro -z now             full RELRO: the GOT is read-only after start-up
#   -z noexecstack              no executable stack
#
# Only for the optimized build types (FORTIFY needs the optimizer) and
# never with MWL_SANITIZE or MWL_FUZZ: ASan's interceptors do not see the
# __*_chk functions FORTIFY calls instead, and a fuzz build is instrumented
# for coverage, not shipped. Each flag is checked and dropped (with a
# message) where the toolchain lacks it. The hardening_check test
# (scripts/check_hardening.py) reads the ELF files to prove the result.
option(MWL_HARDEN "Harden optimized builds (FORTIFY, stack protector, PIE, full RELRO)" ON)

set(MWL_HARDEN_CONFIGS Release RelWithDebInfo MinSizeRel)
string(REPLACE ";" "," MWL_HARDEN_CONFIG_LIST "${MWL_HARDEN_CONFIGS}")
set(MWL_HARDEN_ACTIVE OFF)
set(MWL_HARDEN_SKIP "")       # why the build is not hardened (for the test)
set(MWL_HARDEN_FORTIFY 0)     # the _FORTIFY_SOURCE level used

if(NOT MWL_HARDEN)
  set(MWL_HARDEN_SKIP "MWL_HARDEN is OFF")
elseif(MWL_SANITIZE)
  set(MWL_HARDEN_SKIP "MWL_SANITIZE build (ASan does not check FORTIFY's __*_chk calls)")
elseif(MWL_FUZZ)
  set(MWL_HARDEN_SKIP "MWL_FUZZ build")
elseif(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
  set(MWL_HARDEN_SKIP "hardening flags are set up for Linux/ELF only")
else()
  include(CheckCCompilerFlag)
  include(CheckCSourceCompiles)
  include(CheckLinkerFlag)
  include(CheckPIESupported)

  set(harden_compile "")
  set(harden_link "")

  # _FORTIFY_SOURCE: glibc's <features.h> turns the requested level into
  # __USE_FORTIFY_LEVEL, capped at what the C library and the compiler
  # support (3 needs glibc 2.34 and __builtin_dynamic_object_size: GCC 12,
  # Clang 9), so that is what the checks read. -U first: some toolchains
  # predefine it (Ubuntu's GCC), and a plain -D would redefine it.
  foreach(level 3 2)
    set(CMAKE_REQUIRED_FLAGS "-O2 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=${level}")
    set(CMAKE_REQUIRED_QUIET ON)
    check_c_source_compiles("
#include <string.h>
#if !defined(__USE_FORTIFY_LEVEL) || __USE_FORTIFY_LEVEL < ${level}
#error fortify level ${level} not supported
#endif
int main(void) { return 0; }" MWL_HAVE_FORTIFY_${level})
    unset(CMAKE_REQUIRED_FLAGS)
    unset(CMAKE_REQUIRED_QUIET)
    if(MWL_HAVE_FORTIFY_${level})
      set(MWL_HARDEN_FORTIFY ${level})
      list(APPEND harden_compile -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=${level})
      break()
    endif()
  endforeach()
  if(NOT MWL_HARDEN_FORTIFY)
    message(WARNING "hardening: _FORTIFY_SOURCE not supported by this C library; building without it")
  endif()

  # Compiler flags, each only if the compiler takes it for this target.
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i.86)$")
    set(cf_flag -fcf-protection=full)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    set(cf_flag -mbranch-protection=standard)
  else()
    set(cf_flag "")
  endif()
  foreach(flag -fstack-protector-strong -fstack-clash-protection ${cf_flag})
    string(MAKE_C_IDENTIFIER "MWL_HAVE_CFLAG${flag}" var)
    check_c_compiler_flag(${flag} ${var})
    if(${var})
      list(APPEND harden_compile ${flag})
    elseif(flag STREQUAL "-fstack-protector-strong")
      check_c_compiler_flag(-fstack-protector-all MWL_HAVE_CFLAG_fstack_protector_all)
      if(MWL_HAVE_CFLAG_fstack_protector_all)
        list(APPEND harden_compile -fstack-protector-all)
      else()
        message(WARNING "hardening: no stack protector in this compiler")
      endif()
    else()
      message(STATUS "hardening: ${flag} not supported, skipped")
    endif()
  endforeach()

  # Linker flags: full RELRO and a non-executable stack.
  foreach(flag -z,relro -z,now -z,noexecstack)
    string(MAKE_C_IDENTIFIER "MWL_HAVE_LDFLAG${flag}" var)
    check_linker_flag(C "LINKER:${flag}" ${var})
    if(${var})
      list(APPEND harden_link "LINKER:${flag}")
    else()
      message(WARNING "hardening: the linker does not take ${flag}")
    endif()
  endforeach()

  # PIE: every object position-independent and executables linked with
  # -pie (CMP0083, NEW since cmake_minimum_required 3.14). The module
  # libraries are PIC already (libmwl.so reuses their objects).
  check_pie_supported(OUTPUT_VARIABLE pie_out LANGUAGES C)
  if(CMAKE_C_LINK_PIE_SUPPORTED)
    set(CMAKE_POSITION_INDEPENDENT_CODE ON)
  else()
    message(WARNING "hardening: the toolchain cannot link PIE executables: ${pie_out}")
  endif()

  # Only in the optimized configurations (a generator expression, so a
  # multi-config generator gets them in those configurations only).
  set(opt "$<CONFIG:${MWL_HARDEN_CONFIG_LIST}>")
  foreach(flag ${harden_compile})
    add_compile_options("$<${opt}:${flag}>")
  endforeach()
  foreach(flag ${harden_link})
    add_link_options("$<${opt}:${flag}>")
  endforeach()
  set(MWL_HARDEN_ACTIVE ON)
  if(CMAKE_CONFIGURATION_TYPES OR CMAKE_BUILD_TYPE IN_LIST MWL_HARDEN_CONFIGS)
    string(REPLACE ";" " " shown "${harden_compile};${harden_link}")
    message(STATUS "hardening (${MWL_HARDEN_CONFIG_LIST}): ${shown}, PIE ${CMAKE_C_LINK_PIE_SUPPORTED}")
  endif()
endif()
