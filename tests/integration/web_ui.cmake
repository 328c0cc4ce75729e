# mwl's web page in headless Chromium (web_ui.py with web_ui.js, on
# playwright-core from tests/node): items created and canceled through the
# page, checked with DCMTK's findscu; a screenshot of the page lands in the
# build folder (web_ui.png). Exit 77 (skipped) only when node, Chromium or
# DCMTK is missing outside CI.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_test(NAME web_ui
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/web_ui.py $<TARGET_FILE:mwl>
            ${CMAKE_BINARY_DIR}/web_ui.png)
  set_tests_properties(web_ui PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 900)
endif()
