# `mwl find` (find_mwl.py): against DCMTK's wlmscpfs with DCMTK's example
# worklist and queries, compared with findscu (find_dcmtk); the same against
# `mwl serve` (find_serve); names in three character sets through --json
# (find_json_dcmtk, find_json_serve); exit statuses against scripted peers
# (find_exit). Tests that need DCMTK or jq exit 77 (skipped) without them.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl)
  foreach(mode dcmtk serve json_dcmtk json_serve exit)
    add_test(NAME find_${mode}
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/find_mwl.py ${mode} $<TARGET_FILE:mwl>)
    set_tests_properties(find_${mode} PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 180)
  endforeach()
endif()
# Help text and man page are written together: mwl.1 must document every
# option of every command's --help (and nothing they do not show).
if(Python3_Interpreter_FOUND AND TARGET mwl)
  add_test(NAME man_page_options
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/find_mwl.py man $<TARGET_FILE:mwl>)
  set_tests_properties(man_page_options PROPERTIES LABELS integration TIMEOUT 60)
endif()
