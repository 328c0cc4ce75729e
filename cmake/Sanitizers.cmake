# ASan + UBSan build (CI's second run): any finding aborts the test.
if(MWL_SANITIZE)
  set(MWL_SAN_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_compile_options(${MWL_SAN_FLAGS})
  add_link_options(${MWL_SAN_FLAGS})
endif()
if(MWL_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MWL_FUZZ needs clang (CC=clang)")
  endif()
  # Instrument everything for coverage; only fuzz targets link the engine.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
