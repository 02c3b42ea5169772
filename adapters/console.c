/* console.c - placeholder, being written. */
#include "autoconf.h"
