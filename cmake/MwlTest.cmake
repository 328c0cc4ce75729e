# mwl_add_unit_test(<file>_test.c LINKS <libs...> [LABELS <labels...>])
# Builds one test binary from a source beside the code it tests and registers
# it with CTest (label "unit" unless LABELS says otherwise). A test links only
# its module and that module's edges, so a call outside the layer diagram
# fails to link.
function(mwl_add_unit_test source)
  cmake_parse_arguments(T "" "" "LINKS;LABELS;ARGS" ${ARGN})
  get_filename_component(name ${source} NAME_WE)
  add_executable(${name} ${source})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/harness)
  target_link_libraries(${name} PRIVATE ${T_LINKS})
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT 120
    ENVIRONMENT "MWL_SOURCE_DIR=${PROJECT_SOURCE_DIR};MWL_BUILD_DIR=${PROJECT_BINARY_DIR}")
endfunction()
