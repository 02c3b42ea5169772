/*
 * email_links.c - signed unsubscribe and confirmation links.
 * (Placeholder until issue 5.)
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>

#include "email_links.h"
#include "xmalloc.h"

struct email_links {
	struct email_links_deps deps;
};

struct email_links *
email_links_new(struct http_server *srv, const struct email_links_deps *deps,
    char *err, size_t errlen)
{
	struct email_links *el = xcalloc(1, sizeof(*el));

	(void)srv;
	(void)err;
	(void)errlen;
	el->deps = *deps;
	return el;
}

void
email_links_free(struct email_links *el)
{
	free(el);
}

int
email_links_unsubscribe_url(const struct email_links *el, int64_t msg_id,
    char *buf, size_t len)
{
	(void)el;
	(void)msg_id;
	(void)buf;
	(void)len;
	return -1;
}

int
email_links_send_confirmation(struct email_links *el, int64_t member,
    int64_t list, const char *email, int64_t now, char *err, size_t errlen)
{
	(void)el;
	(void)member;
	(void)list;
	(void)email;
	(void)now;
	snprintf(err, errlen, "email confirmation is not implemented yet");
	return -1;
}
