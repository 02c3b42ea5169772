/*
 * fuzz_webhook_twilio.c - libFuzzer target: Twilio's webhooks, through
 * the adapter contract (adapters/adapter.h): verify, parse_inbound,
 * parse_status and reply_body of a sender with an auth token, on any request
 * the webhook layer can hand over (input format: fuzz_util.h). Seeds:
 * fuzz/corpus/fuzz_webhook_twilio/, made from tests/fixtures/twilio/.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include "fuzz_util.h"

#define FZTW_PUBLIC "https://sms.example.org"

/* The account and token tests/fixtures/twilio/make-fixtures.py signs with. */
static const char fztw_conf[] =
    "[sender tw1]\nprovider = twilio\nfrom = +15550100000\n"
    "account_sid = AC0123456789abcdef0123456789abcdef\n"
    "auth_token = test-auth-token-0123456789abcdef\n";

static struct fuzz_sender fztw_senders[] = {
    {.name = "tw1", .now = INT64_C(1795749274000)},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_webhook_input(fztw_conf, FZTW_PUBLIC, fztw_senders,
	    sizeof(fztw_senders) / sizeof(fztw_senders[0]), data, size);
	return 0;
}
