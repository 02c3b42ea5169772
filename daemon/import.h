/*
 * import.h - CSV imports of members (/api/v1/imports...), streamed: the
 * CSV arrives in pieces (any byte boundary) and is parsed row by row,
 * never held whole. The protocol is described at the top of import.c and
 * in outreachd(8).
 *
 * Contract:
 *  - Routes need the API's bearer token (api_authorized()); errors are
 *    JSON {"error": {"code", "message"}}: 422 for a bad request or a CSV
 *    that cannot be read on (bad header, unterminated quote), 404 for an
 *    unknown or expired import, 409 for a piece out of order or an
 *    import that is no longer open, 503 for the store or shutdown.
 *  - An import is a session kept in memory; an idle one expires after
 *    IMPORT_IDLE_MS. A daemon restart forgets sessions (not rows): the
 *    client reruns the import, which is idempotent. On a PostgreSQL
 *    store an import is a row of the database instead (import_pg.c):
 *    every node takes its pieces, and it outlives a node's restart.
 *  - Every row is validated and normalized (phone.h, [sms]
 *    default_region or the import's region) before it reaches the store
 *    (store_import_row()); a rejected row is reported with its line
 *    number and reason, and never half-written.
 *  - The rows of a piece are acknowledged only after their group commit
 *    (store_on_commit()): what a reply counts is on disk.
 *  - An import never re-subscribes a member who opted out (or left the
 *    list): the opt-out wins and is counted.
 *  - Loop thread only. Dependencies are borrowed.
 */
#ifndef OD_IMPORT_H
#define OD_IMPORT_H

#define IMPORT_IDLE_MS	  (10 * 60 * 1000) /* an idle session expires */
#define IMPORT_MAX_OPEN	  8		   /* sessions open at once */
#define IMPORT_ISSUES_MAX 1000		   /* problem rows kept in a report */
#define IMPORT_SOURCE_MAX 200  /* bytes of the consent source text */
#define IMPORT_VALUE_MAX  256  /* bytes of a name, zip or tag */
#define IMPORT_CUSTOM_MAX 1024 /* bytes of a custom field's value */

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

/* Registers the /api/v1/imports routes on srv. */
struct imports *imports_new(struct http_server *srv,
    const struct imports_deps *deps);
/* Frees every session; call after the store's last flush. NULL: no-op. */
void imports_free(struct imports *im);

#endif
