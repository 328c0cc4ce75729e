# `mwl serve --log-format json` (log_json.py): a server and one `mwl echo`;
# every line of the server's standard error is a JSON object with time,
# pid, level and msg, the same content as the text log.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_test(NAME log_json
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/log_json.py $<TARGET_FILE:mwl>)
  set_tests_properties(log_json PROPERTIES LABELS integration TIMEOUT 120)
endif()
