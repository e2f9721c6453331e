/* items.h - streaming readers of item-text files.
 *
 * Formats:
 *   ITEMS_FORMAT_ATOMIC  RecBole/UniSRec atomic files with a `name:type` header line, fields
 *                        separated by TAB: UniSRec's `.text` (`item_id:token<TAB>text:token_seq`,
 *                        amazon-scientific/Scientific.text) and RecBole's `.item`
 *                        (`item_id:token<TAB>title:token_seq`, amazon-games/Games.item). The
 *                        `item_id` column is the id; the text is the `token_seq` column, or all
 *                        of them joined by one space when there are several (title, categories,
 *                        brand). Other columns are ignored.
 *   ITEMS_FORMAT_JSONL   one JSON object per line: {"item_id": "...", "text": "..."} (item_id
 *                        may also be an integer); other members are ignored.
 * Texts are returned byte for byte (trailing spaces kept; a line's CR before LF dropped), so a
 * text hash over them is stable. Blank lines and a leading UTF-8 BOM are skipped.
 *
 * Every text and id must be valid UTF-8 (checked strictly: no overlongs, surrogates or code
 * points past U+10FFFF). A malformed line is reported with "path:line: ..." (and for bad UTF-8
 * the byte offset in the file) and the reader moves on to the next line, so a caller may either
 * stop at the first error or skip bad lines.
 */
#ifndef SSNA_INGEST_ITEMS_H
#define SSNA_INGEST_ITEMS_H

#include <stddef.h>

#define ITEMS_MAX_LINE (1 << 20) /* longest accepted line in bytes */
#define ITEMS_ID_MAX   511       /* longest item id in bytes (an LMDB key) */

typedef enum {
    ITEMS_FORMAT_AUTO = 0, /* by extension (.text/.item, .jsonl/.ndjson/.json), else content */
    ITEMS_FORMAT_ATOMIC,
    ITEMS_FORMAT_JSONL,
} ItemsFormat;

/* One item; the strings stay valid until the next items_next or items_close. */
typedef struct {
    const char *id; /* NUL-terminated, id_len bytes, non-empty */
    size_t id_len;
    const char *text; /* NUL-terminated after text_len bytes (JSON \u0000 may embed a NUL) */
    size_t text_len;  /* may be 0 */
    long line;        /* 1-based line number in the file */
} ItemText;

typedef struct ItemsReader ItemsReader;

/* Open path (ITEMS_FORMAT_AUTO to detect the format) and, for atomic files, read the header.
 * 0 or -1 with err naming the file. */
int items_open(ItemsReader **out, const char *path, ItemsFormat format, char *err, size_t errlen);
/* Next item: 1 with *item filled, 0 at end of file, -1 with err "path:line: ..." for a malformed
 * line (the next call continues after it) or a read error (the next call returns 0). */
int items_next(ItemsReader *r, ItemText *item, char *err, size_t errlen);
/* Close the reader (NULL is fine). */
void items_close(ItemsReader *r);
/* The format in use (detected when opened with ITEMS_FORMAT_AUTO). */
ItemsFormat items_format(const ItemsReader *r);
/* Name of a format: "atomic", "jsonl" or "auto". */
const char *items_format_name(ItemsFormat format);

#endif
