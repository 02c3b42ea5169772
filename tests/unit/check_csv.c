/*
 * check_csv.c - unit tests of csv. (Placeholder: tests land with the code.)
 */
#include "autoconf.h"

#include <check.h>

#include "check_suites.h"

Suite *
csv_suite(void)
{
	return suite_create("csv");
}
