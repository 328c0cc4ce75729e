# The soak benchmark (bench/soak.c), short (soak_short.py): ~20 s of 16
# mixed plain/TLS clients (C-ECHO, C-FIND, C-FIND + C-CANCEL, release,
# abort), 4 stalling peers and 2,000 sequential associations against
# `mwl serve`; no failures, the server's fds back where they were, RSS
# growth bounded. It keeps both cores busy, so it runs alone (RUN_SERIAL):
# other tests' timing bounds should not have to allow for it. Exit 77
# (skipped) without openssl.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND CMAKE_SYSTEM_NAME STREQUAL "Linux" AND EXISTS ${PROJECT_SOURCE_DIR}/bench/soak.c)
  set(MWL_SOAK_TEST_FLAGS "")
  if(MWL_SANITIZE)
    list(APPEND MWL_SOAK_TEST_FLAGS --sanitized)
  endif()
  add_test(NAME soak_short
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/soak_short.py $<TARGET_FILE:mwl> $<TARGET_FILE:soak>
            ${MWL_SOAK_TEST_FLAGS})
  set_tests_properties(soak_short PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 240 RUN_SERIAL TRUE)
endif()
