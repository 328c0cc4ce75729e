# libmwl for modality software: one static and one shared library made of
# the module libraries a client needs (STYLE.md §3: base, dicom, ul, dimse,
# net, client; worklist and store with MWL_LIB_STORE), the public headers
# under include/mwl/ with their module paths (so `#include "client/client.h"`
# works with -I<prefix>/include/mwl), and a pkg-config file, mwl.pc.
#
#   cmake --install build --prefix /opt/mwl
#   cc app.c $(PKG_CONFIG_PATH=/opt/mwl/lib/pkgconfig pkg-config --cflags --libs mwl)
#
# The module libraries stay as they are (each test links only its module);
# libmwl reuses their object files, so nothing is compiled twice.
include(GNUInstallDirs)

option(MWL_LIB_STORE "Include the worklist model and the SQLite store in libmwl" ON)

set(MWL_LIB_MODULES base dicom ul dimse net client)
if(MWL_LIB_STORE)
  list(APPEND MWL_LIB_MODULES worklist store)
endif()

set(MWL_LIB_OBJECTS)
set(MWL_LIB_TARGETS)
foreach(module ${MWL_LIB_MODULES})
  if(NOT TARGET mwl_${module})
    message(FATAL_ERROR "libmwl needs the module library mwl_${module}")
  endif()
  list(APPEND MWL_LIB_OBJECTS $<TARGET_OBJECTS:mwl_${module}>)
  list(APPEND MWL_LIB_TARGETS mwl_${module})
endforeach()

# The modules are built position-independent, so the same objects serve
# the shared library.
add_library(mwl_lib_static STATIC ${MWL_LIB_OBJECTS})
add_library(mwl_lib_shared SHARED ${MWL_LIB_OBJECTS})
add_dependencies(mwl_lib_static ${MWL_LIB_TARGETS})
add_dependencies(mwl_lib_shared ${MWL_LIB_TARGETS})
# ABI version: 0.x releases may break it, so the soname carries major.minor.
set_target_properties(mwl_lib_static PROPERTIES
  OUTPUT_NAME mwl
  ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
set_target_properties(mwl_lib_shared PROPERTIES
  OUTPUT_NAME mwl
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
  LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
# What the objects call outside libmwl (the static library's users get the
# same list from Libs.private below).
# Imported targets are scoped to the directory that found them (src/net).
find_package(OpenSSL 3.0 REQUIRED)
set(MWL_LIB_PRIVATE_LIBS OpenSSL::SSL OpenSSL::Crypto ZLIB::ZLIB PkgConfig::JANSSON Threads::Threads m)
set(MWL_PC_LIBS_PRIVATE "-lssl -lcrypto -lz -ljansson -lpthread -lm")
if(MWL_LIB_STORE)
  # Imported targets are scoped to the directory that found them (src/store).
  find_package(SQLite3 REQUIRED)
  list(APPEND MWL_LIB_PRIVATE_LIBS SQLite::SQLite3)
  set(MWL_PC_LIBS_PRIVATE "-lsqlite3 ${MWL_PC_LIBS_PRIVATE}")
endif()
target_link_libraries(mwl_lib_shared PRIVATE ${MWL_LIB_PRIVATE_LIBS})
# A shared library must not leave symbols for the program to provide --
# except in instrumented builds, where clang leaves the sanitizer and
# coverage runtimes to the executable.
if(NOT MWL_SANITIZE AND NOT MWL_FUZZ)
  target_link_options(mwl_lib_shared PRIVATE "LINKER:--no-undefined")
endif()

install(TARGETS mwl_lib_static mwl_lib_shared
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})

# Public headers: each module's interface (STYLE.md §3), never its private
# *_int.h or test helpers. Everything a public header includes must be
# installed too (tests/integration/install_example.py compiles each one
# on its own against the installed tree).
foreach(module ${MWL_LIB_MODULES})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/src/${module}/
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mwl/${module}
    FILES_MATCHING PATTERN "*.h"
    PATTERN "*_int.h" EXCLUDE
    PATTERN "*test*" EXCLUDE
    PATTERN "CMakeFiles" EXCLUDE)
endforeach()

# pkg-config: paths relative to the .pc file, so an installed tree can be
# moved (and `cmake --install --prefix` elsewhere) without editing it.
file(RELATIVE_PATH MWL_PC_TO_PREFIX
  "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" MWL_PC_TO_PREFIX "${MWL_PC_TO_PREFIX}")
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/mwl.pc @ONLY CONTENT
"prefix=\${pcfiledir}/@MWL_PC_TO_PREFIX@
libdir=\${prefix}/@CMAKE_INSTALL_LIBDIR@
includedir=\${prefix}/@CMAKE_INSTALL_INCLUDEDIR@

Name: mwl
Description: DICOM Modality Worklist client library (associations, C-ECHO, C-FIND, data sets, character sets)
Version: @PROJECT_VERSION@
Libs: -L\${libdir} -lmwl
Libs.private: @MWL_PC_LIBS_PRIVATE@
Cflags: -I\${includedir}/mwl
")
install(FILES ${PROJECT_BINARY_DIR}/mwl.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
