/* table.h — aligned text tables for a terminal (actionpool-ctl report and
 * summary). Cells are copied, made one line (control characters become
 * spaces) and cut to AP_TABLE_CELL_MAX characters, the last three then "...".
 * Columns are as wide as their widest cell or heading, two spaces apart; a
 * column marked in `right` is aligned right (numbers). */
#ifndef AP_TABLE_H
#define AP_TABLE_H

#include <stdio.h>

#include "status.h"

#define AP_TABLE_CELL_MAX 60 /* characters of a cell */

/* Zero-initialise, set ncols, heads and right, add rows, print, release. */
typedef struct ap_table {
    int ncols;
    const char *const *heads; /* ncols headings; borrowed */
    unsigned right;           /* bit c set: column c holds numbers, aligned right */
    char **cells;             /* rows x ncols copies, owned */
    int rows;
} ap_table;

/* Appends one row of ncols values (copied). AP_ERR_NOMEM when memory ran out;
 * the table stays printable and releasable. */
ap_status ap_table_add(ap_table *t, const char *const *values);

void ap_table_print(FILE *out, const ap_table *t);

/* Frees the cells; the table can be filled again. */
void ap_table_release(ap_table *t);

#endif
