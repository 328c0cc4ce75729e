# DICOM over TLS against DCMTK (tls_interop.py): echoscu/findscu +tls with
# client certificates against `mwl serve --tls-port`, refusals, plain DICOM
# on the TLS port, TLS 1.2/1.3 and resumption, `mwl echo/find --tls` against
# mwl serve and DCMTK storescp +tls; and every malformed-input case of the
# network-core tests repeated inside TLS. Certificates are made by the
# test with the openssl command. Mode hl7: HL7 v2 over MLLP over TLS
# (hl7-tls) with mwl hl7send --tls and Python's ssl module. Exit 77 (skipped) without openssl or DCMTK.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  set(MWL_TLS_TEST_FLAGS "")
  if(MWL_SANITIZE)
    list(APPEND MWL_TLS_TEST_FLAGS --sanitized)
  endif()
  foreach(mode interop bad-peers reload hl7)
    string(REPLACE "-" "_" tname "tls_${mode}")
    add_test(NAME ${tname}
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/tls_interop.py ${mode} $<TARGET_FILE:mwl>
              ${MWL_TLS_TEST_FLAGS})
    set_tests_properties(${tname} PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 240)
  endforeach()
endif()
