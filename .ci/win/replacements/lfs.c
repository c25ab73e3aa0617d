/*
 * Stand-in for LuaFileSystem (Debian package lua-filesystem), built by
 * .ci/win/build-deps.sh only when neither the Debian source package nor its
 * upstream tarball can be fetched. It has what Penlight's pl.path and pl.dir use
 * for busted: attributes, symlinkattributes (same as attributes: no links here),
 * currentdir, chdir, dir, mkdir, rmdir. Windows only, ANSI code page paths.
 */
#include <direct.h>
#include <errno.h>
#include <io.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lua.h"
#include "lauxlib.h"

#define DIR_METATABLE "imalloc.lfs.dir"

typedef struct {
  intptr_t handle; /* -1 once closed or exhausted */
  int first;       /* the entry from _findfirst64 is not returned yet */
  struct __finddata64_t data;
} dir_data;

static int pusherror(lua_State *L, const char *what) {
  int en = errno;
  lua_pushnil(L);
  if (what)
    lua_pushfstring(L, "%s: %s", what, strerror(en));
  else
    lua_pushstring(L, strerror(en));
  lua_pushinteger(L, en);
  return 3;
}

static int pushresult(lua_State *L, int ok, const char *what) {
  if (!ok) return pusherror(L, what);
  lua_pushboolean(L, 1);
  return 1;
}

static const char *modename(unsigned short mode) {
  if (mode & _S_IFDIR) return "directory";
  if (mode & _S_IFREG) return "file";
  if (mode & _S_IFCHR) return "char device";
  return "other";
}

static void pushfield(lua_State *L, const struct __stat64 *st, const char *name) {
  if (strcmp(name, "mode") == 0) lua_pushstring(L, modename(st->st_mode));
  else if (strcmp(name, "size") == 0) lua_pushinteger(L, (lua_Integer)st->st_size);
  else if (strcmp(name, "access") == 0) lua_pushinteger(L, (lua_Integer)st->st_atime);
  else if (strcmp(name, "modification") == 0) lua_pushinteger(L, (lua_Integer)st->st_mtime);
  else if (strcmp(name, "change") == 0) lua_pushinteger(L, (lua_Integer)st->st_ctime);
  else if (strcmp(name, "nlink") == 0) lua_pushinteger(L, (lua_Integer)st->st_nlink);
  else lua_pushnil(L);
}

/* lfs.attributes(path [, name | table]) */
static int lfs_attributes(lua_State *L) {
  static const char *const names[] = {"mode", "size", "access", "modification",
                                      "change", "nlink", NULL};
  const char *path = luaL_checkstring(L, 1);
  struct __stat64 st;
  luaL_Buffer b;
  size_t len = strlen(path);
  int i;
  /* _stat64 fails on "dir/" but not on "C:/" or "/". */
  while (len > 1 && (path[len - 1] == '/' || path[len - 1] == '\\') &&
         path[len - 2] != ':')
    len--;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, path, len);
  luaL_pushresult(&b);
  if (_stat64(lua_tostring(L, -1), &st) != 0) return pusherror(L, path);
  if (lua_type(L, 2) == LUA_TSTRING) {
    pushfield(L, &st, lua_tostring(L, 2));
    return 1;
  }
  if (lua_istable(L, 2))
    lua_pushvalue(L, 2);
  else
    lua_newtable(L);
  for (i = 0; names[i] != NULL; i++) {
    pushfield(L, &st, names[i]);
    lua_setfield(L, -2, names[i]);
  }
  return 1;
}

static int lfs_currentdir(lua_State *L) {
  char *dir = _getcwd(NULL, 0);
  if (dir == NULL) return pusherror(L, NULL);
  lua_pushstring(L, dir);
  free(dir);
  return 1;
}

static int lfs_chdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  return pushresult(L, _chdir(path) == 0, path);
}

static int lfs_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  return pushresult(L, _mkdir(path) == 0, path);
}

static int lfs_rmdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  return pushresult(L, _rmdir(path) == 0, path);
}

static int dir_close(lua_State *L) {
  dir_data *d = (dir_data *)luaL_checkudata(L, 1, DIR_METATABLE);
  if (d->handle != -1) {
    _findclose(d->handle);
    d->handle = -1;
  }
  return 0;
}

static int dir_next(lua_State *L) {
  dir_data *d = (dir_data *)luaL_checkudata(L, 1, DIR_METATABLE);
  if (d->handle == -1) return 0;
  if (d->first)
    d->first = 0;
  else if (_findnext64(d->handle, &d->data) != 0) {
    _findclose(d->handle);
    d->handle = -1;
    return 0;
  }
  lua_pushstring(L, d->data.name);
  return 1;
}

/* lfs.dir(path): iterator, dir object (with :next() and :close()) */
static int lfs_dir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  dir_data *d;
  lua_pushcfunction(L, dir_next);
  d = (dir_data *)lua_newuserdatauv(L, sizeof(dir_data), 0);
  d->handle = -1;
  d->first = 1;
  luaL_setmetatable(L, DIR_METATABLE);
  lua_pushfstring(L, "%s/*", path);
  d->handle = _findfirst64(lua_tostring(L, -1), &d->data);
  lua_pop(L, 1);
  if (d->handle == -1) return luaL_error(L, "cannot open %s: %s", path, strerror(errno));
  return 2;
}

static const luaL_Reg dir_meth[] = {
  {"next", dir_next},
  {"close", dir_close},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"attributes", lfs_attributes},
  {"symlinkattributes", lfs_attributes},
  {"currentdir", lfs_currentdir},
  {"chdir", lfs_chdir},
  {"dir", lfs_dir},
  {"mkdir", lfs_mkdir},
  {"rmdir", lfs_rmdir},
  {NULL, NULL}
};

__declspec(dllexport) int luaopen_lfs(lua_State *L);

int luaopen_lfs(lua_State *L) {
  luaL_newmetatable(L, DIR_METATABLE);
  luaL_newlib(L, dir_meth);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, dir_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, dir_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_pushliteral(L, "LuaFileSystem 1.8.0 (imalloc .ci/win stand-in)");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
