#include "table.h"

#include <stdlib.h>
#include <string.h>

/* Display width of UTF-8 text: one per character (what a terminal shows for
 * the text these tables meet). */
static int text_width(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* A copy of s fit for one cell; NULL when out of memory. */
static char *cell_new(const char *s) {
    size_t len = strlen(s), i = 0, out = 0;
    int chars = 0;
    char *c = malloc(len + 4);
    if (!c)
        return NULL;
    for (; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        if ((b & 0xC0) != 0x80 && ++chars > AP_TABLE_CELL_MAX - 3 && text_width(s + i) > 3) {
            memcpy(c + out, "...", 3);
            out += 3;
            break;
        }
        c[out++] = b < 0x20 || b == 0x7F ? ' ' : (char)b;
    }
    c[out] = '\0';
    return c;
}

ap_status ap_table_add(ap_table *t, const char *const *values) {
    char **grown = realloc(t->cells, (size_t)(t->rows + 1) * (size_t)t->ncols * sizeof *grown);
    if (!grown)
        return AP_ERR_NOMEM;
    t->cells = grown;
    char **row = grown + (size_t)t->rows * (size_t)t->ncols;
    for (int c = 0; c < t->ncols; c++)
        row[c] = NULL;
    t->rows++;
    for (int c = 0; c < t->ncols; c++)
        if (!(row[c] = cell_new(values[c])))
            return AP_ERR_NOMEM;
    return AP_OK;
}

void ap_table_release(ap_table *t) {
    for (int i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->rows = 0;
}

static void cell_print(FILE *out, const char *text, int width, int right, int last) {
    int pad = width - text_width(text);
    if (right)
        fprintf(out, "%*s%s", pad, "", text);
    else if (last)
        fputs(text, out);
    else
        fprintf(out, "%s%*s", text, pad, "");
    fputs(last ? "\n" : "  ", out);
}

/* A cell left NULL by a failed ap_table_add prints as empty. */
static const char *cell_at(const ap_table *t, int r, int c) {
    const char *s = t->cells[r * t->ncols + c];
    return s ? s : "";
}

void ap_table_print(FILE *out, const ap_table *t) {
    int *width = calloc((size_t)t->ncols, sizeof *width);
    if (!width)
        return;
    for (int c = 0; c < t->ncols; c++) {
        width[c] = text_width(t->heads[c]);
        for (int r = 0; r < t->rows; r++) {
            int w = text_width(cell_at(t, r, c));
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (int c = 0; c < t->ncols; c++)
        cell_print(out, t->heads[c], width[c], (t->right >> c) & 1, c == t->ncols - 1);
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->ncols; c++)
            cell_print(out, cell_at(t, r, c), width[c], (t->right >> c) & 1, c == t->ncols - 1);
    free(width);
}
