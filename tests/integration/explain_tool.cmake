# `mwl explain` (explain_tool.py): demo data, a matching and a non-matching
# query, the failing key's line, --json, the PN option hint, usage errors.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl)
  add_test(NAME explain_tool
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/explain_tool.py $<TARGET_FILE:mwl>)
  set_tests_properties(explain_tool PROPERTIES LABELS integration TIMEOUT 120)
endif()
