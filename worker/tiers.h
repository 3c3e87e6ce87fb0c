/* tiers.h — the tier an action needs: the highest of the tier it asks for (a
 * floor), its default in the executor map, and the floor the setting
 * tier_floors raises ("pricing=2,campaigns:scale=3"). Tier 1 executes at once
 * when eligible (confidence and impact above the settings; the entity's
 * recent history is Postgres' to check), tier 2 waits for approval, tier 3 is
 * never executed automatically. */
#ifndef AP_TIERS_H
#define AP_TIERS_H

#include "action.h"
#include "config.h"
#include "executor_map.h"

typedef struct ap_tiers ap_tiers;

/* Parses cfg->tier_floors against the map. Returns NULL with err set naming
 * the setting and the entry when it is malformed. `map` is borrowed and must
 * outlive the result, which the caller frees with ap_tiers_free. */
ap_tiers *ap_tiers_new(const ap_config *cfg, const ap_executor_map *map, char *err, size_t errsz);

/* The tier of a valid action, 1..3. */
int ap_tiers_of(const ap_tiers *t, const ap_action *a);

/* Whether a tier-1 action is confident and valuable enough to run unattended. */
int ap_tiers_eligible(const ap_tiers *t, const ap_action *a);

void ap_tiers_free(ap_tiers *t);

#endif
