# `mwl expire` and the expiry of `mwl serve` (expire_tool.py): demo data,
# usage and store errors, by date and by status age, one log line.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl)
  add_test(NAME expire_tool
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/expire_tool.py $<TARGET_FILE:mwl>)
  set_tests_properties(expire_tool PROPERTIES LABELS integration TIMEOUT 120)
endif()
