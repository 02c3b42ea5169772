/*
 * check_main.c - the one unit-test runner. Runs every suite; select one
 * with CK_RUN_SUITE=queue (and a test case with CK_RUN_CASE=...). Set
 * CK_FORK=no to run under gdb or valgrind.
 */
#include "autoconf.h"

#include <stdlib.h>

#include <check.h>

#include "check_suites.h"
#include "log.h"

int
main(void)
{
	SRunner *sr;
	int failed;

	/* Keep expected error paths from cluttering the report. */
	log_set_level(LOG_LVL_ERROR);
	sr = srunner_create(config_suite());
	srunner_add_suite(sr, mime_suite());
	srunner_add_suite(sr, queue_suite());
	srunner_add_suite(sr, schema_suite());
	srunner_add_suite(sr, ratelimit_suite());
	srunner_add_suite(sr, smstext_suite());
	srunner_add_suite(sr, kannel_suite());
	srunner_add_suite(sr, console_suite());
	srunner_add_suite(sr, plivo_suite());
	srunner_add_suite(sr, telnyx_suite());
	srunner_add_suite(sr, twilio_suite());
	srunner_add_suite(sr, httpclient_suite());
	srunner_add_suite(sr, vonage_suite());
	srunner_add_suite(sr, workq_suite());
	srunner_add_suite(sr, phone_suite());
	srunner_add_suite(sr, members_suite());
	srunner_add_suite(sr, inbound_suite());
	srunner_add_suite(sr, csv_suite());
	srunner_add_suite(sr, fileutil_suite());
	srunner_add_suite(sr, file_email_suite());
	srunner_add_suite(sr, email_links_suite());
	srunner_add_suite(sr, email_addr_suite());
	srunner_add_suite(sr, smtp_suite());
	srunner_add_suite(sr, quiet_suite());
	srunner_add_suite(sr, store_alerts_suite());
	srunner_add_suite(sr, events_suite());
	srunner_add_suite(sr, conversations_suite());
	srunner_add_suite(sr, staff_suite());
	srunner_add_suite(sr, template_suite());
	srunner_add_suite(sr, json_flat_suite());
	srunner_add_suite(sr, pg_suite());
	srunner_add_suite(sr, pg_migrate_suite());
	srunner_add_suite(sr, pg_queue_suite());
	srunner_add_suite(sr, queue_pg_suite());
	srunner_add_suite(sr, queue_async_suite());
	srunner_add_suite(sr, store_pg_suite());
	srunner_add_suite(sr, links_pg_suite());
	srunner_add_suite(sr, imports_pg_suite());
	srunner_add_suite(sr, lists_pg_suite());
	srunner_add_suite(sr, alerts_pg_suite());
	srunner_add_suite(sr, conversations_pg_suite());
	srunner_add_suite(sr, notify_pg_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
