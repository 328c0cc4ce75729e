# kill -9 of `mwl serve` while HL7 orders stream in over MLLP (issue 12):
# every order acknowledged AA is in the worklist afterwards, once
# (hl7_crash.py). Several connections keep both cores busy with fsyncs, so
# it runs alone (RUN_SERIAL). Exit 77 (skipped) when mwl has no HL7 feed.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME hl7_crash
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/hl7_crash.py $<TARGET_FILE:mwl>)
  set_tests_properties(hl7_crash PROPERTIES LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endif()
