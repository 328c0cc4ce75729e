# The HTTP listener of `mwl serve` (http_api.py): /healthz, /metrics in the
# Prometheus text format after a C-ECHO, 404/405 bodies, bad request lines,
# bearer tokens refused and accepted, checked with Python's urllib and with
# curl. Exit 77 (skipped) when curl is missing.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_test(NAME http_api
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/http_api.py $<TARGET_FILE:mwl>)
  set_tests_properties(http_api PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 180)
endif()
