# What peers send stays data (wire_data.py): the server's log escapes
# control characters from AE titles and query values (wire_log), and
# `mwl find --out-dir` names files by number whatever a server sends, and
# shows its error comment escaped (wire_find).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  foreach(mode log find)
    add_test(NAME wire_${mode}
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/wire_data.py ${mode} $<TARGET_FILE:mwl>)
    set_tests_properties(wire_${mode} PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 120)
  endforeach()
endif()
