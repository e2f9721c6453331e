# tests/kernels.cmake - the torch reference for model/kernels.c and adam_step.
# kernels_ref_generate (python3-torch) writes seeded inputs and torch's outputs/gradients into the
# build tree; test_kernels_torch (a tests/test_*.c, registered by tests/CMakeLists.txt) reads them.
# A missing torch makes the generator fail, and with it the comparison: never a skip.
add_test(NAME kernels_ref_generate
         COMMAND ${SSNA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/kernels_ref.py
                 ${CMAKE_CURRENT_BINARY_DIR}/kernels_ref.bin)
set_tests_properties(kernels_ref_generate PROPERTIES
                     FIXTURES_SETUP kernels_ref ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 300)
set_tests_properties(test_kernels_torch PROPERTIES FIXTURES_REQUIRED kernels_ref)
