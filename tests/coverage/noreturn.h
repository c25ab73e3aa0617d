/*
** noreturn.h: forced into every file of the coverage build (-include).
**
** Lua's error functions never return (they longjmp), but lauxlib.h does
** not say so, so gcc counts two branches after each call, on its result,
** that no run can take: every luaL_argcheck would add them to the
** branches "not covered". Declared noreturn here, they are not emitted.
** Declarations only, no #include: this comes before a file's own
** feature macros (_GNU_SOURCE). IMALLOC_COVERAGE tells a file that it is
** built for coverage (tests/support/check.h: a forked child's counters).
*/
#define IMALLOC_COVERAGE 1
struct lua_State;
extern int (lua_error)(struct lua_State *L) __attribute__((noreturn));
extern int (luaL_error)(struct lua_State *L, const char *fmt, ...)
    __attribute__((noreturn));
extern int (luaL_argerror)(struct lua_State *L, int arg, const char *extramsg)
    __attribute__((noreturn));
extern int (luaL_typeerror)(struct lua_State *L, int arg, const char *tname)
    __attribute__((noreturn));
