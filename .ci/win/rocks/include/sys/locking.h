/* MSVC's <sys/locking.h> also has the old names of the _locking modes
 * (LuaFileSystem uses them); Wine's has only the _LK_ ones. */
#ifndef IMALLOC_STANDIN_SYS_LOCKING_H
#define IMALLOC_STANDIN_SYS_LOCKING_H
#include_next <sys/locking.h>
#define LK_UNLCK _LK_UNLCK
#define LK_LOCK _LK_LOCK
#define LK_NBLCK _LK_NBLCK
#define LK_RLCK _LK_RLCK
#define LK_NBRLCK _LK_NBRLCK
#endif
