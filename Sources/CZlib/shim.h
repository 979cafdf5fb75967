// The system zlib (Debian zlib1g-dev), for request bodies sent with Content-Encoding gzip or deflate.
#include <zlib.h>
