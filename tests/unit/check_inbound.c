/*
 * check_inbound.c - unit tests of inbound. (Placeholder: tests land with the code.)
 */
#include "autoconf.h"

#include <check.h>

#include "check_suites.h"

Suite *
inbound_suite(void)
{
	return suite_create("inbound");
}
