# `mwl serve`'s HL7 listener against an independent MLLP client from npm,
# node-hl7-client 3.2.0 (hl7_node.py with hl7_client.js): a parsed fixture
# order and one built by the library, on one connection, both acknowledged
# AA and found with `mwl find`. The test installs tests/node's packages with
# `npm ci` when they are missing; exit 77 (skipped) only without node (or a
# node older than the package's engines field).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_test(NAME hl7_node
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/hl7_node.py $<TARGET_FILE:mwl>)
  set_tests_properties(hl7_node PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 900)
endif()
