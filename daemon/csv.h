/*
 * csv.h - an incremental CSV reader (RFC 4180 plus what spreadsheets
 * write). Placeholder: the import work of issue 4 defines it.
 */
#ifndef OD_CSV_H
#define OD_CSV_H

#endif
