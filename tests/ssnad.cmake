# tests/ssnad.cmake - the ssnad integration tests start their own Kafka broker (a JVM) and run the
# daemon with the real encoder. One at a time (a lock, not RUN_SERIAL): two of them at once would
# starve each other's daemons, but the CPU-bound unit and reference tests may run beside one (the
# suite's tests on the 2-core machine: 754 s -> 649 s). COST starts the long ones first.
foreach(t test_ssnad_e2e test_ssnad_crash test_ssnad_badinput test_ssnad_outage test_ssnad_members
          test_ssnad_bounds test_ssnad_trainfail test_ssnad_soak
          test_ssnad_rebalance test_ssnad_coldstart)
  if(TEST ${t})
    set_tests_properties(${t} PROPERTIES RESOURCE_LOCK ssnad_broker TIMEOUT 900)
  endif()
endforeach()
foreach(tc test_ssnad_soak:160 test_ssnad_outage:80 test_ssnad_bounds:75 test_ssnad_e2e:55
           test_ssnad_crash:45 test_ssnad_members:45 test_ssnad_badinput:30)
  string(REPLACE ":" ";" tc ${tc})
  list(GET tc 0 t)
  list(GET tc 1 c)
  if(TEST ${t})
    set_tests_properties(${t} PROPERTIES COST ${c})
  endif()
endforeach()

# The soak runs two daemons that encode the whole Scientific catalogue at once. Beside a CPU-bound
# reference test it took 254 s instead of ~150 s, and as the longest test in the broker lock's
# queue it set the suite's length. The reference tests that keep a core busy for minutes
# (bert_reference, test_bert_ref, test_encoder_ref: lock cpu_heavy, tests/bert.cmake and
# tests/encoder.cmake) therefore run beside the other broker tests, which mostly wait.
if(TEST test_ssnad_soak)
  set_property(TEST test_ssnad_soak APPEND PROPERTY RESOURCE_LOCK cpu_heavy)
  # Under ASan the two daemons' catalogue encoding alone took ~170 s of a 270 s soak, the longest
  # test of CI's sanitizer pass; there the soak streams a slice (3,500 users, ~25,000 events:
  # past the duplicate window, same kills and restarts). The normal pass streams everything.
  if(SSNA_SANITIZE)
    set_property(TEST test_ssnad_soak APPEND PROPERTY ENVIRONMENT SSNA_SOAK_SLICE=3500)
  endif()
endif()

# ThreadSanitizer pass (ops/test.sh --tsan runs ctest -L tsan): the tests in which threads of ours
# share memory in one process. Not the broker tests: under ThreadSanitizer (GCC 12's libtsan,
# Debian bookworm) every process of ours that runs librdkafka (ssna replay, the tests' producers)
# died with SIGSEGV inside libtsan's allocator, on a librdkafka broker thread resolving the
# broker's address (getaddrinfo -> __check_pf -> realloc with no allocator cache for the thread),
# before any code of ours ran on that thread: test_ssnad_e2e and test_ssnad_bounds cannot run
# there until the runtime is fixed or librdkafka's resolver is kept off its threads.
foreach(t test_pool test_pool_members test_metrics test_log test_http test_ssnad_topk
          test_ssnad_refresh)
  if(TEST ${t})
    set_property(TEST ${t} APPEND PROPERTY LABELS tsan)
  endif()
endforeach()

# An arm started from an `ssna train` checkpoint (variants = ...:init=PATH): start-up, snapshot
# precedence after a restart, and the refusals; no broker needed.
add_test(NAME ssnad_warm COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ssnad_warm.sh)
set_tests_properties(ssnad_warm PROPERTIES ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 300)

# A stop signal during a reload (the re-exec after lost partitions) must not be lost: both of the
# reload's windows, through SSNAD_FAULT hooks; no broker needed.
add_test(NAME ssnad_reload_stop COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ssnad_reload_stop.sh)
set_tests_properties(ssnad_reload_stop PROPERTIES ENVIRONMENT "${SSNA_TEST_ENV}" TIMEOUT 300)
