# The client (SCU) against real peers (client_dcmtk.py): `mwl echo` against
# DCMTK's wlmscpfs and storescp, a closed port and stalling listeners; C-FIND
# through the client API (client_dcmtk_test) against wlmscpfs serving DCMTK's
# example worklist, compared with findscu, and a cancel. The DCMTK tests
# exit 77 (skipped) when DCMTK or its examples are missing.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET mwl_client)
  foreach(mode echo_dcmtk echo_refused echo_stall echo_status)
    add_test(NAME client_${mode}
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/client_dcmtk.py ${mode} $<TARGET_FILE:mwl>)
    set_tests_properties(client_${mode} PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 120)
  endforeach()
  foreach(mode find_dcmtk find_cancel)
    add_test(NAME client_${mode}
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/client_dcmtk.py ${mode}
              $<TARGET_FILE:client_dcmtk_test>)
    set_tests_properties(client_${mode} PROPERTIES LABELS integration SKIP_RETURN_CODE 77 TIMEOUT 180)
  endforeach()
endif()
