/* clock.h - the clocks every module reads: monotonic seconds for durations and rates, wall-clock
 * milliseconds for timestamps others will read (Kafka, logs). */
#ifndef SSNA_MODEL_CLOCK_H
#define SSNA_MODEL_CLOCK_H

#include <stdint.h>

/* Seconds on CLOCK_MONOTONIC: differences only (never goes back, unaffected by NTP steps). */
double clock_monotonic_s(void);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);

#endif
