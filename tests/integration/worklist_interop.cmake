# `mwl serve` answering Modality Worklist C-FIND, checked with DCMTK
# (worklist_interop.py): DCMTK's example worklist and queries against
# wlmscpfs and the strict/default PN servers (worklist_interop_compare),
# findscu --cancel against 300 matches (worklist_interop_cancel), names in
# Latin-1, UTF-8 and ISO 2022 Japanese queried in each set under every
# response-charset mode (worklist_interop_charset). Exit 77 (skipped) when
# DCMTK or its examples are missing.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  foreach(mode compare cancel charset)
    add_test(NAME worklist_interop_${mode}
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/worklist_interop.py ${mode} $<TARGET_FILE:mwl>)
    set_tests_properties(worklist_interop_${mode} PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 180)
  endforeach()
endif()
