# tests/kafka.cmake - extra settings of the Kafka tests (test_codec, test_kafka_mock and
# test_replay_source register themselves as plain C tests).
#
# test_kafka_broker runs the real broker of ops/kafka.sh (java + the jars from ops/setup.sh) on
# free loopback ports in a temporary folder, and `ssna replay` from the build tree; a missing java
# or missing jars fail it. A broker start takes 5-10 s on two cores, the test about 40 s.
set_tests_properties(test_kafka_broker PROPERTIES TIMEOUT 300 LABELS kafka PROCESSORS 2)
set_tests_properties(test_kafka_mock PROPERTIES TIMEOUT 180 LABELS kafka)
set_tests_properties(test_codec test_replay_source PROPERTIES LABELS kafka)

# ops/kafka.sh without jars must stop at once and say what to run, not hang or start half a broker.
add_test(NAME kafka_sh_without_jars
         COMMAND bash ${CMAKE_SOURCE_DIR}/ops/kafka.sh start ${CMAKE_CURRENT_BINARY_DIR}/kafka-nojars)
set_tests_properties(kafka_sh_without_jars PROPERTIES
                     ENVIRONMENT "${SSNA_TEST_ENV};SSNA_KAFKA_LIB=${CMAKE_CURRENT_BINARY_DIR}/no-such-lib"
                     PASS_REGULAR_EXPRESSION "no Kafka jars in .*ops/setup.sh"
                     FAIL_REGULAR_EXPRESSION "starting broker"
                     LABELS kafka TIMEOUT 30)
