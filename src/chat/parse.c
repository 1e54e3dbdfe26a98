/* parse.c — placeholder, filled below */
