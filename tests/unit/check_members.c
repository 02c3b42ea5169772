/*
 * check_members.c - unit tests of members. (Placeholder: tests land with the code.)
 */
#include "autoconf.h"

#include <check.h>

#include "check_suites.h"

Suite *
members_suite(void)
{
	return suite_create("members");
}
