# tests/ssnad.cmake - the ssnad integration tests start their own Kafka broker (a JVM) and run the
# daemon with the real encoder: run them one at a time so they do not starve each other (and the
# rest of the suite) of the machine's cores.
foreach(t test_ssnad_e2e test_ssnad_crash test_ssnad_badinput test_ssnad_outage test_ssnad_members
          test_ssnad_bounds test_ssnad_trainfail test_ssnad_soak
          test_ssnad_rebalance)
  if(TEST ${t})
    set_tests_properties(${t} PROPERTIES RUN_SERIAL TRUE TIMEOUT 900)
  endif()
endforeach()

# ThreadSanitizer pass (ops/test.sh --tsan runs ctest -L tsan): the tests in which threads of ours
# share memory.
foreach(t test_pool test_metrics test_log test_http test_ssnad_topk test_ssnad_refresh
          test_ssnad_e2e test_ssnad_bounds)
  if(TEST ${t})
    set_property(TEST ${t} APPEND PROPERTY LABELS tsan)
  endif()
endforeach()
