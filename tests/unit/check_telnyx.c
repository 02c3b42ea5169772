/* check_telnyx.c - placeholder: the telnyx adapter's tests are being written. */
#include "autoconf.h"

#include "check_suites.h"

Suite *
telnyx_suite(void)
{
	return suite_create("telnyx");
}
