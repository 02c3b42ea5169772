/*
 * fuzz_webhook_telnyx.c - libFuzzer target: Telnyx's webhooks, through
 * the adapter contract (adapters/adapter.h): verify, parse_inbound,
 * parse_status and reply_body of a sender with an Ed25519 public key, on any
 * request the webhook layer can hand over (input format: fuzz_util.h). Seeds:
 * fuzz/corpus/fuzz_webhook_telnyx/, made from tests/fixtures/telnyx/.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include "fuzz_util.h"

#define FZTX_PUBLIC "https://gw.example.org"

/* RFC 8032 TEST 1's public key, which signed the fixtures. */
static const char fztx_conf[] =
    "[sender t1]\nprovider = telnyx\nfrom = +14155550199\n"
    "api_key = KEYtestkey\n"
    "public_key = 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
    "messaging_profile_id = 4001767e-ce0f-4cae-9d5f-0d5e636e7809\n";

/* The signatures' telnyx-timestamp (2026-11-27T03:14:34Z). */
static struct fuzz_sender fztx_senders[] = {
    {.name = "t1", .now = INT64_C(1795749274000)},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_webhook_input(fztx_conf, FZTX_PUBLIC, fztx_senders,
	    sizeof(fztx_senders) / sizeof(fztx_senders[0]), data, size);
	return 0;
}
