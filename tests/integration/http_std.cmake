# The standard Modality Scheduled Procedure Step search of `mwl serve`
# (PS3.18 ch. 14; http_std.py): matching, includefield, the Warning texts,
# paging, 204/400/405/406, the three media types (DICOM JSON, Native DICOM
# Model XML parts, multipart DICOM JSON) and results equal to C-FIND's.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_test(NAME http_std
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/http_std.py $<TARGET_FILE:mwl>)
  set_tests_properties(http_std PROPERTIES LABELS integration TIMEOUT 300)
endif()
