# Encoder area: `ssna encode` checked end to end by the torch reference (tests/reference/
# encoder_ref.py cli). The C tests test_encoder*.c register themselves; the Scientific reference
# test gets the longest budget since it runs all 4,385 texts through C and torch.
add_test(NAME encoder_cli
         COMMAND ${SSNA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/encoder_ref.py cli
                 --ssna $<TARGET_FILE:ssna> --model ${SSNA_MODEL_DIR})
set_tests_properties(encoder_cli PROPERTIES ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 300)
if(TEST test_encoder_ref)
  # the longest: started first; not beside the soak (tests/ssnad.cmake)
  set_tests_properties(test_encoder_ref PROPERTIES COST 140 RESOURCE_LOCK cpu_heavy)
  if(SSNA_SANITIZE) # every 8th text: ASan's coverage is the code paths, not the 4,385 texts
    set_property(TEST test_encoder_ref APPEND PROPERTY ENVIRONMENT SSNA_ENCODER_REF_STRIDE=8)
  endif()
endif()
