# The installed libmwl (install_example.py): `cmake --install` into a
# temporary prefix, every installed header compiled on its own, examples/
# built as a separate project through pkg-config (and linked once more with
# `pkg-config --static`), and the example run against the installed
# `mwl serve` with a demo database, listing today's steps for a station.
# Exit 77 (skipped) without pkg-config.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl_lib_shared AND TARGET mwl)
  # An ASan libmwl only loads into an ASan program: build the example so.
  string(REPLACE ";" " " MWL_EXAMPLE_SAN_FLAGS "${MWL_SAN_FLAGS}")
  add_test(NAME install_example
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/install_example.py
            --build ${PROJECT_BINARY_DIR} --source ${PROJECT_SOURCE_DIR}
            --cmake ${CMAKE_COMMAND} --cc ${CMAKE_C_COMPILER}
            "--san-flags=${MWL_EXAMPLE_SAN_FLAGS}")
  set_tests_properties(install_example PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()

# What libmwl.so exports: only public MWL_API declarations (hidden
# visibility), and every public declaration is marked.
if(Python3_Interpreter_FOUND AND TARGET mwl_lib_shared)
  add_test(NAME libmwl_exports
    COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/scripts/check_exports.py $<TARGET_FILE:mwl_lib_shared>)
  set_tests_properties(libmwl_exports PROPERTIES LABELS unit SKIP_RETURN_CODE 77)
endif()
