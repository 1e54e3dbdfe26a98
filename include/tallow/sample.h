/* tallow/sample.h — public API of the sample module (filled in by its module). */
#ifndef TALLOW_SAMPLE_H
#define TALLOW_SAMPLE_H
#endif
