# tests/quality.cmake - the pieces of ops/bench/quality (the benchmark itself trains for hours):
# `ssna export` is exactly the split `ssna train` uses, RecBole 1.2.1 loads it as the same rows,
# and the most-popular baseline's per-user ranks and metrics equal an independent computation.
# Runs with the venv python (RecBole, installed by ops/setup.sh); ~20 s.
add_test(NAME quality_split
         COMMAND ${SSNA_VENV_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/quality_split.py)
set_tests_properties(quality_split PROPERTIES ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 300)
