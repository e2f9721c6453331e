# tests/panel.cmake - test_panel a second time with the portable int8 kernel (PANEL_GENERIC),
# which a machine without AVX-512 VNNI runs: its own copy of model/panel.c, linked before the
# libraries, so the archive's VNNI build of the same symbols is never pulled in.
add_executable(test_panel_generic ${CMAKE_CURRENT_SOURCE_DIR}/test_panel.c
                                  ${CMAKE_SOURCE_DIR}/model/panel.c)
target_compile_definitions(test_panel_generic PRIVATE PANEL_GENERIC)
target_link_libraries(test_panel_generic PRIVATE ssna_daemon)
target_include_directories(test_panel_generic PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
add_test(NAME test_panel_generic COMMAND test_panel_generic)
set_tests_properties(test_panel_generic PROPERTIES ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 600)
