/* check_ratelimit.c - placeholder, being written. */
#include "autoconf.h"

#include "check_suites.h"

Suite *
ratelimit_suite(void)
{
	return suite_create("ratelimit");
}
