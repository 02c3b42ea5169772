/*
 * import.h - CSV imports of members (POST /api/v1/imports...), streamed:
 * the CSV arrives in pieces and is parsed row by row, never held whole.
 *
 * Contract:
 *  - Routes need the API's bearer token; see import.c for the protocol.
 *  - Every row is validated and normalized (phone.h) before it reaches
 *    the store (store_import_row()); a rejected row is reported with its
 *    line number and reason, and never half-written.
 *  - An import never re-subscribes a member who opted out.
 *  - Loop thread only. Dependencies are borrowed.
 */
#ifndef OD_IMPORT_H
#define OD_IMPORT_H

struct api;
struct config;
struct http_server;
struct imports;
struct store;

struct imports_deps {
	struct store *st;
	struct api *api;
	const struct config *cfg;
};

struct imports *imports_new(struct http_server *srv,
    const struct imports_deps *deps);
void imports_free(struct imports *im);

#endif
