# Warnings for our own code (STYLE.md §11), trimmed from nghttp2's picky set.
set(MWL_WARNINGS
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wstrict-prototypes
  -Wmissing-prototypes -Wformat=2 -Wvla -Wundef -Wimplicit-fallthrough
  -Wwrite-strings -Wpointer-arith -Wno-format-nonliteral)
if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  list(APPEND MWL_WARNINGS -Wmissing-variable-declarations)
endif()
if(MWL_WERROR)
  list(APPEND MWL_WARNINGS -Werror)
endif()
add_compile_options(${MWL_WARNINGS})
