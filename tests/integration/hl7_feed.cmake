# The HL7 v2 order feed of `mwl serve` (issue 12) end to end (hl7_feed.py):
# orders of three RIS styles (2.3.1 ORM Latin-1 with ZDS, 2.5.1 OMI UTF-8
# with two IPC, 2.3.1 ORM ISO IR87 without ZDS) sent with `mwl hl7send`
# from tests/integration/hl7_messages, every mapped attribute read back with
# DCMTK's findscu -W; XO, CA, DC, ADT^A08, ADT^A40, retransmissions,
# AE/AR for malformed and unsupported messages, a raw MLLP connection that
# goes on after errors, and an AA'd order surviving SIGKILL. Exit 77
# (skipped) only when DCMTK is missing.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_test(NAME hl7_feed
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/hl7_feed.py $<TARGET_FILE:mwl>)
  set_tests_properties(hl7_feed PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
