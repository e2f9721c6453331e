# tests/layout.cmake - checks of the source tree itself: the include arrows README states
# (tests/layers.sh) and clang-format (the format-check target; a missing clang-format fails).
add_test(NAME include_layers COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/layers.sh)
set_tests_properties(include_layers PROPERTIES ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 60)
if(TARGET format-check)
  add_test(NAME format_check COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target format-check)
else()
  add_test(NAME format_check COMMAND sh -c "echo 'clang-format not found (ops/setup.sh installs it)'; exit 1")
endif()
set_tests_properties(format_check PROPERTIES TIMEOUT 120)
