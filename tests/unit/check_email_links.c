/*
 * check_email_links.c - unit tests of email_links. (Placeholder: tests land with the code.)
 */
#include "autoconf.h"

#include <check.h>

#include "check_suites.h"

Suite *
email_links_suite(void)
{
	return suite_create("email_links");
}
