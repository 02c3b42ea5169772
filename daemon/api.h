/* api.h - placeholder, being written. */
