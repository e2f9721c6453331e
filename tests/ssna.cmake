# tests/ssna.cmake - the SSNA model's extra test registrations.
# The python3-torch reference writes weights, batch, noise, loss, gradients and Adam steps for
# every variant; test_ssna_reference replays them in C. A missing torch fails the fixture.
add_test(NAME ssna_reference_fixture
         COMMAND ${SSNA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/ssna_ref.py
                 ${CMAKE_CURRENT_BINARY_DIR}/ssna_ref)
set_tests_properties(ssna_reference_fixture PROPERTIES FIXTURES_SETUP ssna_ref
                     ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 300)
set_tests_properties(test_ssna_reference PROPERTIES FIXTURES_REQUIRED ssna_ref)

# `ssna train / eval / recommend` end to end on the generic CSV reader (MovieLens), id variant.
add_test(NAME ssna_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ssna_cli.sh)
set_tests_properties(ssna_cli PROPERTIES ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 600)
