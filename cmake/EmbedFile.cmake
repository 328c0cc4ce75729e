# cmake -DIN=<file> -DOUT=<file.c> -DNAME=<symbol> -P EmbedFile.cmake
# Writes `const char NAME[]` holding the file's bytes plus a NUL.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* Generated from ${NAME} source at build time -- do not edit. */\n"
  "extern const char ${NAME}[];\nconst char ${NAME}[] = {${bytes}0x00};\n")
