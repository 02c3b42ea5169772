/*
 * check_smtp.c - unit tests of smtp. (Placeholder: tests land with the code.)
 */
#include "autoconf.h"

#include <check.h>

#include "check_suites.h"

Suite *
smtp_suite(void)
{
	return suite_create("smtp");
}
