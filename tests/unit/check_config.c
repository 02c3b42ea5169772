/* check_config.c - placeholder, being written. */
#include "autoconf.h"

#include "check_suites.h"

Suite *
config_suite(void)
{
	return suite_create("config");
}
