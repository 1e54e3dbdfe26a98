/* tallow/tokenizer.h — public API of the tokenizer module (filled in by its module). */
#ifndef TALLOW_TOKENIZER_H
#define TALLOW_TOKENIZER_H
#endif
