/* http.h - placeholder, being written. */
