# DICOM JSON round trip (json_dcmtk.py): DCMTK's worklist examples and
# dump_dcmtk.py's synthetic and character set data sets, encoded to JSON,
# decoded back and compared element by element by json_decode_test.
# Skipped (exit 77) without DCMTK.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET json_decode_test)
  add_test(NAME json_dcmtk
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/json_dcmtk.py $<TARGET_FILE:json_decode_test>)
  set_tests_properties(json_dcmtk PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
