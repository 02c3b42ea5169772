/*
 * webhook_kv.h - a decoded name/value pair of an HTTP request (a form
 * field or a header), as the HTTP server hands it to the webhook layer and
 * the webhook layer to an adapter's verify/parse functions.
 *
 * It lives in core/ because both sides use it: daemon/http.c fills it and
 * adapters/ read it, and neither should include the other for it.
 * Both strings are borrowed for the duration of one request.
 */
#ifndef OD_WEBHOOK_KV_H
#define OD_WEBHOOK_KV_H

struct webhook_kv {
	const char *key;
	const char *value;
};

#endif
