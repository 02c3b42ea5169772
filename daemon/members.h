/*
 * members.h - the members and lists API (/api/v1/members,
 * /api/v1/lists, /api/v1/lists/{id}/members, consent logs, CSV exports).
 *
 * Contract:
 *  - Routes need the API's bearer token (api_authorized()); errors are
 *    JSON {"error": {"code", "message"}} naming the field at fault: 422
 *    for invalid input, 404 for an unknown id, 409 for a conflict (a
 *    phone or keyword taken, a list not empty), 503 for the store.
 *  - Writes answer after their group commit (store_on_commit()).
 *  - Phones are normalized with phone.h ([sms] default_region).
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
