/*
 * members.h - the members and lists API (/api/v1/members,
 * /api/v1/lists, /api/v1/lists/{id}/members, consent logs, CSV exports).
 *
 * Routes (JSON unless said; listings take ?after=CURSOR&limit=N, 1..1000,
 * default 100, and return "next_cursor", null on the last page):
 *   POST   /api/v1/members                  create (201, Location)
 *   GET    /api/v1/members?phone=&email=&name=&tag=&list=   search
 *   GET    /api/v1/members/{id}             (ids only; search by phone)
 *   PATCH  /api/v1/members/{id}             partial update
 *   POST   /api/v1/members/{id}/optout      {"channel", "detail"?}
 *   POST   /api/v1/members/{id}/optin       {"channel", "detail"?}
 *   GET    /api/v1/members/{id}/consent     the consent log, oldest first
 *   GET    /api/v1/lists                    every list
 *   POST   /api/v1/lists                    create (201, Location)
 *   GET|PATCH|DELETE /api/v1/lists/{list}   list = id or name; DELETE
 *                                           ?force=true; config lists 409
 *   GET    /api/v1/lists/{list}/members?status=
 *   POST   /api/v1/lists/{list}/members     {"member" | "phone"/"email",
 *                                           "channel"?, "consent_source"}
 *   DELETE /api/v1/lists/{list}/members/{id}?channel=
 *   GET    /api/v1/lists/{list}/export.csv  streamed CSV (text/csv)
 *   GET    /api/v1/consent/export.csv[?member=ID]   streamed CSV
 *
 * Contract:
 *  - Routes need the API's bearer token (api_authorized()); errors are
 *    JSON {"error": {"code", "message"}} naming the field at fault: 422
 *    for invalid input, 404 for an unknown id, 409 for a conflict (a
 *    phone or keyword taken, a list not empty), 503 for the store.
 *  - Writes answer after their group commit (store_on_commit()).
 *  - Phones are normalized with phone.h ([sms] default_region); emails
 *    are checked and lower-cased.
 *  - API subscriptions are active at once, except email subscriptions to
 *    a double opt-in list: pending, and email_links_send_confirmation()
 *    queues the confirmation. They never lift a channel opt-out.
 *  - Exports read a page of rows at a time and send each page as a chunk
 *    once the previous one was written; CSV per RFC 4180, and a cell
 *    starting with = + - @ TAB CR (not a plain number) gets a leading '
 *    against formula injection.
 *  - Loop thread only. Dependencies are borrowed.
 */
#ifndef OD_MEMBERS_H
#define OD_MEMBERS_H

struct api;
struct config;
struct dispatch;
struct email_links;
struct http_server;
struct members;
struct store;

struct members_deps {
	struct store *st;
	struct api *api;
	struct dispatch *dispatch;
	const struct config *cfg;
	struct email_links *links; /* email double opt-in; may be NULL */
};

struct members *members_new(struct http_server *srv,
    const struct members_deps *deps);
void members_free(struct members *m);

#endif
