/*
 * simulator.h - what the phone simulator page (/ui/simulator, doc/web.md)
 * asks the daemon: GET /api/v1/simulator (is it on, which sender and
 * number to text) and GET /api/v1/messages?to=&after=&limit= (the texts
 * to and from one number, after a cursor).
 *
 * Contract:
 *  - The simulator is on when some [sender] uses the console adapter;
 *    its texts go in through that sender's inbound webhook (console.c).
 *  - Both routes need staff authentication (api_authorized()); they
 *    only read. Loop thread only; dependencies are borrowed.
 */
#ifndef OD_SIMULATOR_H
#define OD_SIMULATOR_H

struct api;
struct config;
struct http_server;
struct store;

struct simulator_deps {
	struct store *st;
	struct api *api;
	const struct config *cfg;
};

struct simulator;

/* Registers the two routes on srv. */
struct simulator *simulator_new(struct http_server *srv,
    const struct simulator_deps *deps);
/* The first [sender] with provider = console, or NULL: the simulator's. */
const struct config_sender *simulator_sender(const struct config *cfg);
/* Frees sim; NULL is a no-op. */
void simulator_free(struct simulator *sim);

#endif
