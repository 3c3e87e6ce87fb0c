/* lag.h — `actionpool-ctl lag`: how many messages the worker group has not
 * committed yet, per partition of the topics it consumes (the main and the
 * retry topics of every subsystem of the executor map; not the DLQs, which
 * only ops replay).
 *
 * The probe is a consumer handle with the workers' group.id that never
 * subscribes, so it reads the group's committed offsets without joining the
 * group or committing anything.
 *
 * Status convention (actionpool-ctl turns it into its exit code):
 *   AP_ERR_IO       no broker or group coordinator answers
 *   AP_ERR_INVALID  the executor map or a setting is wrong
 *   AP_ERR_KAFKA    the broker answered with an error (e.g. a topic is missing)
 * err is set in every case. */
#ifndef AP_LAG_H
#define AP_LAG_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "topics.h"

typedef struct ap_lag_partition {
    char topic[AP_TOPIC_MAX];
    int32_t partition;
    int64_t committed; /* next offset the group reads; -1: nothing committed */
    int64_t low, high; /* watermarks: first offset still held, offset after the last */
    int64_t lag;       /* high - max(committed, low); high - low when nothing committed */
} ap_lag_partition;

/* One measurement, partitions in topic order then partition order. Filled by
 * ap_lag_measure, which owns `parts` until ap_lag_release. */
typedef struct ap_lag {
    ap_lag_partition *parts;
    int count;
    int64_t total;
} ap_lag;

typedef struct ap_lag_probe ap_lag_probe;

/* Creates a probe for cfg->group_id over the topics of the executor map in the
 * schema folder. Connects lazily: an unreachable broker shows at the first
 * ap_lag_measure. Returns NULL with err set; the caller frees the probe with
 * ap_lag_probe_free. */
ap_lag_probe *ap_lag_probe_new(const ap_config *cfg, char *err, size_t errsz);

/* Destroys the probe (leaving the group's offsets as they are); accepts NULL. */
void ap_lag_probe_free(ap_lag_probe *p);

/* Measures every partition once into lag (released first, so one ap_lag can
 * be measured again and again). On error lag is left empty. */
ap_status ap_lag_measure(ap_lag_probe *p, ap_lag *lag, char *err, size_t errsz);

/* Measures once a second until the total lag is 0 in two consecutive
 * measurements (*drained = 1) or `seconds` have passed (*drained = 0), writing
 * "lag: N messages left" to progress (may be NULL) at most once a second while
 * it is not 0. lag holds the last measurement. */
ap_status ap_lag_wait(ap_lag_probe *p, int seconds, ap_lag *lag, FILE *progress, int *drained,
                      char *err, size_t errsz);

/* Writes lag as an aligned table with a total line, or (json != 0) as one JSON
 * object: {"group":..., "partitions":[{"topic","partition","committed"|null,
 * "low","end","lag"}...], "total":N}. */
void ap_lag_print(FILE *out, const ap_lag_probe *p, const ap_lag *lag, int json);

/* Frees what lag holds and empties it; accepts a zeroed ap_lag. */
void ap_lag_release(ap_lag *lag);

#endif
