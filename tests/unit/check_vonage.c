/* check_vonage.c - placeholder: the vonage adapter's tests are being written. */
#include "autoconf.h"

#include "check_suites.h"

Suite *
vonage_suite(void)
{
	return suite_create("vonage");
}
