/*
 * json_flat.h - the fast path of reading an API request body: a flat
 * JSON object of plain values, parsed without jansson's general lexer.
 *
 * Contract:
 *  - json_flat_object() returns exactly what json_loadb(buf, len,
 *    JSON_REJECT_DUPLICATES, ...) returns (a new reference to an object,
 *    keys in order) when buf holds one JSON object, with whitespace
 *    around its tokens, whose keys (under JSON_FLAT_KEY_MAX bytes) and
 *    string values are printable ASCII without escapes, and whose other
 *    values are non-negative integers of at most 18 digits without a
 *    leading zero, true, false or null. For anything else (another value,
 *    a duplicate key, an escape, a byte past ASCII, a syntax error) it
 *    returns NULL and the caller parses buf with jansson, which words any
 *    error. So the two never disagree: this only skips work.
 *  - Pure: no globals written, no logging. Safe on any thread.
 */
#ifndef OD_JSON_FLAT_H
#define OD_JSON_FLAT_H

#include <stddef.h>

#include <jansson.h>

#define JSON_FLAT_KEY_MAX 64 /* bytes of a key, with its NUL */

json_t *json_flat_object(const char *buf, size_t len);

#endif
