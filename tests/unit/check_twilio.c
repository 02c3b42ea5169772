/* check_twilio.c - placeholder: the twilio adapter's tests are being written. */
#include "autoconf.h"

#include "check_suites.h"

Suite *
twilio_suite(void)
{
	return suite_create("twilio");
}
