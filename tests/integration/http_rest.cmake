# The REST worklist API of `mwl serve` (http_rest.py): /mwlitems search,
# count, create, read, replace, delete and status change; every error
# status; a DICOM JSON round trip; and search results checked against
# C-FIND's (mwl find --json) on the same demo store. Exit 77 (skipped)
# when curl is missing.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_test(NAME http_rest
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/http_rest.py $<TARGET_FILE:mwl>)
  set_tests_properties(http_rest PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
