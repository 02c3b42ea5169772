/* check_kannel.c - placeholder: the kannel adapter's tests are being written. */
#include "autoconf.h"

#include "check_suites.h"

Suite *
kannel_suite(void)
{
	return suite_create("kannel");
}
