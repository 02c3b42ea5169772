/* check_config.c - placeholder, being written. */
#include "autoconf.h"
