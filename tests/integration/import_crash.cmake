# kill -9 during `mwl import`: the database stays consistent and holds
# exactly the committed files (issue: worklist store crash-safety).
add_test(NAME import_crash
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/import_crash.py $<TARGET_FILE:mwl>)
set_tests_properties(import_crash PROPERTIES LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77)
