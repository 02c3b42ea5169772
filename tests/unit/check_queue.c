/* check_queue.c - placeholder, being written. */
#include "autoconf.h"

#include "check_suites.h"

Suite *
queue_suite(void)
{
	return suite_create("queue");
}
