# The HTTP listener's observability endpoints (http_observe.py): /queries
# after C-FINDs from two calling AE titles (and findscu when installed),
# /metrics by calling AE with the latency histogram, /explain (GET, POST,
# a logged query), /openapi.json equal to docs/openapi.json.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_test(NAME http_observe
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/http_observe.py $<TARGET_FILE:mwl>
            ${PROJECT_SOURCE_DIR}/docs/openapi.json)
  set_tests_properties(http_observe PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 180)
endif()
