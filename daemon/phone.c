/*
 * phone.c - placeholder until the libphonenumber shim (phone.cc) lands.
 */
#include "autoconf.h"

#include <stdio.h>

#include "phone.h"

int
phone_normalize(const char *input, const char *region, char *out,
    size_t outlen, char *err, size_t errlen)
{
	(void)input;
	(void)region;
	(void)out;
	(void)outlen;
	snprintf(err, errlen, "phone numbers are not supported yet");
	return -1;
}

bool
phone_region_known(const char *region)
{
	(void)region;
	return false;
}
