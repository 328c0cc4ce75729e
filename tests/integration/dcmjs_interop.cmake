# `mwl serve` against a Node.js client, dcmjs-dimse 0.3.3
# (dcmjs_interop.py with dcmjs_worklist.js): a C-ECHO and the library's
# stock worklist query (Pregnancy Status 0 for "no value"), compared with
# `mwl find` sending the same identifier. The test installs dcmjs-dimse with
# `npm ci` in tests/node when it is missing; exit 77 (skipped) only without
# node.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_test(NAME dcmjs_interop
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/dcmjs_interop.py $<TARGET_FILE:mwl>)
  set_tests_properties(dcmjs_interop PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 900)
endif()
