# HTTPS for `mwl serve --http-port` (http_tls.py): --http-tls-cert and
# --http-tls-key with certificates the test makes, checked with curl and
# Python's ssl module: the CA-trusting client gets /healthz and /metrics,
# TLS 1.1, RSA key exchange, CBC suites and plain HTTP are refused, a bad
# certificate or key refuses to start. Exit 77 (skipped) when openssl or
# curl is missing.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_test(NAME http_tls
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/http_tls.py $<TARGET_FILE:mwl>)
  set_tests_properties(http_tls PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 180)
endif()
