# `mwl ls` lines its table up by display width (ls_table.py): demo data
# with Japanese, Greek, Cyrillic and Vietnamese names.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl)
  add_test(NAME ls_table
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/ls_table.py $<TARGET_FILE:mwl>)
  set_tests_properties(ls_table PROPERTIES LABELS integration TIMEOUT 120)
endif()
