/*
 * check_phone.c - unit tests of phone. (Placeholder: tests land with the code.)
 */
#include "autoconf.h"

#include <check.h>

#include "check_suites.h"

Suite *
phone_suite(void)
{
	return suite_create("phone");
}
