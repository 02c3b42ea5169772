/* smshttp.c - placeholder: being written (issue 3). */
#include "autoconf.h"

#include "smshttp.h"
