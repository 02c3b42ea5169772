/* ratelimit.h - placeholder, being written. */
