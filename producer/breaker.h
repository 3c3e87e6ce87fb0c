/* breaker.h — actionpool-ctl breaker: the circuit breakers the workers keep in
 * Redis (worker/claims.h), per tenant x subsystem. Status codes as in pg.h,
 * plus AP_ERR_REDIS when Redis cannot be reached and AP_ERR_INVALID when a
 * reset names a breaker that is not open. */
#ifndef AP_BREAKER_H
#define AP_BREAKER_H

#include <stdio.h>

#include "config.h"

/* Prints each open breaker with why it opened, and how many actions wait on it. */
ap_status ap_breaker_status(const ap_config *cfg, FILE *out, char *err, size_t errsz);

/* Closes the breaker of tenant x subsystem (its failure history starts anew)
 * and lets the actions that waited on it run within seconds. */
ap_status ap_breaker_reset(const ap_config *cfg, const char *tenant, const char *subsystem,
                           const char *by, char *err, size_t errsz);

#endif
