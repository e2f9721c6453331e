# The live A/B dashboard (GET /) in a real headless browser: Debian's chromium + chromium-driver
# driven by python3-selenium (ops/setup.sh installs them; the test fails without them). The page
# is served by daemon/http.c over an A/B scripted by tests/dashboard_fixture.c.
add_executable(dashboard_fixture dashboard_fixture.c)
target_link_libraries(dashboard_fixture PRIVATE ssna_daemon)
add_test(NAME test_dashboard
         COMMAND ${SSNA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_dashboard.py
                 $<TARGET_FILE:dashboard_fixture>)
set_tests_properties(test_dashboard PROPERTIES ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 180)
