# `mwl serve` over TCP on 127.0.0.1 with dynamic ports (server_test.py):
# DCMTK interop, misbehaving peers, load, limits, SIGTERM, command line,
# access rules (allow).
# server_interop needs DCMTK's echoscu (exit 77 = skipped without it); the
# others use it when present and a raw-PDU client otherwise.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  set(MWL_SERVER_TEST_FLAGS "")
  if(MWL_SANITIZE)
    list(APPEND MWL_SERVER_TEST_FLAGS --sanitized)
  endif()
  foreach(mode interop bad-peers load limits sigterm cli finds audit reload allow)
    string(REPLACE "-" "_" tname "server_${mode}")
    add_test(NAME ${tname}
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/server_test.py ${mode} $<TARGET_FILE:mwl>
              ${MWL_SERVER_TEST_FLAGS})
    set_tests_properties(${tname} PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 180)
  endforeach()
endif()
