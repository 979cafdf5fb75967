#ifndef FORKLIFT_CJPEG_H
#define FORKLIFT_CJPEG_H
// Placeholder: the libjpeg-turbo shim is being written (issue 3).
int forklift_jpeg_placeholder(void);
#endif
