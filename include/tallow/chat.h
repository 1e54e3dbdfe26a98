/* tallow/chat.h — public API of the chat module (filled in by its module). */
#ifndef TALLOW_CHAT_H
#define TALLOW_CHAT_H
#endif
