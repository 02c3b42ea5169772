/* store_members.c - placeholder: being written (issue 3). */
#include "autoconf.h"

#include "store_members.h"
