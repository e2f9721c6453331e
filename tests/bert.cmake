# BERT-base-uncased (Google's weights, converted by ops/convert_tf_bert.py into
# models/bert-base-uncased by ops/setup.sh): the converter on synthetic tensor bundles, the model
# card's fill-mask example, and per-layer states against Hugging Face `transformers`.
#
# Cost: one BERT-base pass over all 4,385 Scientific texts is ~35 TFLOP, in C and again in
# transformers (about 4 + 6 minutes on an idle 2-core machine), too much for every CI run. The
# comparison therefore takes every SSNA_BERT_REF_STRIDE-th text: 4 in a normal build (1,097 texts,
# ~49k tokens), 64 under the sanitizers (69 texts: the same code paths for ASan, a fraction of the
# time). -DSSNA_BERT_REF_STRIDE=1 runs every text. The reference is computed once per ctest run by
# the bert_reference fixture into the build tree.
set(SSNA_BERT_MODEL_DIR "${CMAKE_SOURCE_DIR}/models/bert-base-uncased" CACHE PATH
    "BERT-base-uncased folder (ops/setup.sh)")
if(SSNA_SANITIZE)
  set(SSNA_BERT_REF_STRIDE 64 CACHE STRING "compare every Nth Scientific text with transformers")
else()
  set(SSNA_BERT_REF_STRIDE 4 CACHE STRING "compare every Nth Scientific text with transformers")
endif()
set(SSNA_BERT_ENV "SSNA_BERT_MODEL_DIR=${SSNA_BERT_MODEL_DIR}"
    "SSNA_BERT_REF_DIR=${CMAKE_BINARY_DIR}/bertref" "SSNA_BERT_REF_STRIDE=${SSNA_BERT_REF_STRIDE}")

add_test(NAME bert_convert
         COMMAND ${SSNA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/convert_check.py
                 ${CMAKE_BINARY_DIR}/bertconv)
set_tests_properties(bert_convert PROPERTIES ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 120)

add_test(NAME bert_reference
         COMMAND ${SSNA_VENV_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/bert_ref.py states
                 --model ${SSNA_BERT_MODEL_DIR}
                 --texts ${SSNA_DATA_DIR}/amazon-scientific/Scientific.text
                 --out ${CMAKE_BINARY_DIR}/bertref --stride ${SSNA_BERT_REF_STRIDE})
set_tests_properties(bert_reference PROPERTIES ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 1800
                     FIXTURES_SETUP bert_ref)
set_tests_properties(test_bert_ref PROPERTIES FIXTURES_REQUIRED bert_ref TIMEOUT 1800)
set_property(TEST test_bert_ref test_bert_fill_mask APPEND PROPERTY ENVIRONMENT ${SSNA_BERT_ENV})
# the longest tests start first (ctest -j runs them beside the broker tests' lock queue)
set_tests_properties(bert_reference PROPERTIES COST 130 RESOURCE_LOCK cpu_heavy)
set_tests_properties(test_bert_ref PROPERTIES COST 65 RESOURCE_LOCK cpu_heavy) # not beside the soak
