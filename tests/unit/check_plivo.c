/* check_plivo.c - placeholder: the plivo adapter's tests are being written. */
#include "autoconf.h"

#include "check_suites.h"

Suite *
plivo_suite(void)
{
	return suite_create("plivo");
}
