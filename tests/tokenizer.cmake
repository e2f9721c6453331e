# model/tokenizer: Hugging Face `tokenizers` (in .venv) writes reference ids for every item text of
# the Scientific and Games data and the hard cases; test_tokenizer compares ours against them.
# Without the venv, tokenizers, the model folder or the data the fixture fails, and so does
# test_tokenizer.
add_test(NAME tokenizer_reference
         COMMAND ${SSNA_VENV_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/tokenizer_ref.py
                 ${CMAKE_BINARY_DIR}/tokref)
set_tests_properties(tokenizer_reference PROPERTIES ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 300
                     FIXTURES_SETUP tokenizer_ref)
set_tests_properties(test_tokenizer PROPERTIES FIXTURES_REQUIRED tokenizer_ref)
