/* metrics.h - placeholder, being written. */
