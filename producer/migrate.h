/* migrate.h — `actionpool-ctl migrate`: bring Postgres and Kafka to the shape
 * this release expects. Both steps are idempotent and safe to run
 * concurrently (a Kubernetes Job and a developer at once).
 *
 * Status convention of both functions, which actionpool-ctl turns into its
 * exit code:
 *   AP_ERR_IO       the server cannot be reached, or a file cannot be read
 *   AP_ERR_INVALID  the schema folder or an option is wrong
 *   AP_ERR_PG       Postgres refused a migration (nothing of it was applied)
 *   AP_ERR_KAFKA    the broker refused at least one topic (each is reported)
 * err is set in every case. */
#ifndef AP_MIGRATE_H
#define AP_MIGRATE_H

#include <stdio.h>

#include "config.h"

/* Applies the SQL migrations of the schema folder (sql/NNN_name.sql, in the
 * order of NNN) that the table schema_migrations does not list yet, each in its
 * own transaction together with its schema_migrations row. A session advisory
 * lock serializes concurrent runs; the second waits, then finds nothing to do.
 * Writes one line per applied migration and a summary to out. */
ap_status ap_migrate_sql(const ap_config *cfg, FILE *out, char *err, size_t errsz);

/* Creates, for every subsystem of the executor map, the topics
 * <prefix>.<s>, <prefix>.<s>.retry.1..AP_RETRY_TOPICS and <prefix>.<s>.dlq with
 * cfg->partitions partitions and the given replication factor (1 for a single
 * broker). A topic that already exists counts as done; its partition count is
 * left as it is. Writes each refused topic to stderr and a summary to out. */
ap_status ap_migrate_topics(const ap_config *cfg, int replication_factor, FILE *out, char *err,
                            size_t errsz);

#endif
