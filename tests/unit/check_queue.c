/* check_queue.c - placeholder, being written. */
#include "autoconf.h"
