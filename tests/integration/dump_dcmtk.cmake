# `mwl dump` against DCMTK's dcmdump on DCMTK's own worklist examples
# (dump_dcmtk: skipped, exit 77, without DCMTK), and its handling of
# truncated files and bad command lines (dump_malformed: needs only Python).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  foreach(mode compare malformed)
    if(mode STREQUAL "compare")
      set(name dump_dcmtk)
    else()
      set(name dump_malformed)
    endif()
    add_test(NAME ${name}
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/dump_dcmtk.py ${mode} $<TARGET_FILE:mwl>)
    set_tests_properties(${name} PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 300)
  endforeach()
endif()
