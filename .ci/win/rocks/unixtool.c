/* unixtool.exe: a Windows program that runs a Linux one and waits for it,
 * so that LuaRocks for Windows under Wine can call a compiler that runs on
 * the Linux side (.ci/win/rocks.sh installs it as cl.exe, link.exe, ...).
 *
 * Wine starts a Linux executable named in CreateProcess (a file that is not
 * a PE image) natively, but returns no process handle: the caller cannot
 * wait for it, and cmd.exe reports status 0 at once while it still runs.
 * So this program,
 * copied as NAME.exe, starts NAME.sh from its own directory with the name of
 * an empty status file as the first argument and its own arguments after
 * it, exactly as it received them. NAME.sh (unixtool.sh) writes the status
 * of the tool it ran into that file when the tool has exited, by renaming a
 * complete file over it; this program waits for that (checking every 10 ms,
 * for ten minutes at most) and exits with that status. Nor does the Linux process get a Windows pipe
 * as its standard output (Wine's pipes have no Linux file descriptor): it
 * would write to the Linux stdout of the first Wine process, out of reach of
 * a Windows caller reading this program's output (LuaRocks reads md5sum's
 * that way). So the tool's output goes to the file STATUS_FILE.out, which
 * this program copies to its own standard output once the tool has exited.
 * Standard error is left as it is (the Linux one): compilers' messages reach
 * the log of whoever started Wine.
 *
 * C99 for mingw-w64, x86-64 and i686. */
#include <windows.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

static int fail(const char *what)
{
  fprintf(stderr, "unixtool: %s failed (error %lu)\n", what, (unsigned long)GetLastError());
  return 1;
}

/* The command line after the program's own name, as Windows splits it. */
static const wchar_t *arguments(const wchar_t *line)
{
  if (*line == L'"') {
    line++;
    while (*line && *line != L'"') line++;
    if (*line) line++;
  } else {
    while (*line && *line != L' ' && *line != L'\t') line++;
  }
  while (*line == L' ' || *line == L'\t') line++;
  return line;
}

int main(void)
{
  wchar_t self[MAX_PATH], tmpdir[MAX_PATH], status_path[MAX_PATH];
  DWORD n = GetModuleFileNameW(NULL, self, MAX_PATH);
  if (n == 0 || n >= MAX_PATH - 4) return fail("GetModuleFileNameW");
  wchar_t *dot = wcsrchr(self, L'.');
  if (!dot || _wcsicmp(dot, L".exe") != 0) return fail("finding .exe in the program's name");
  wcscpy(dot, L".sh");

  if (!GetTempPathW(MAX_PATH, tmpdir) || !GetTempFileNameW(tmpdir, L"ut", 0, status_path))
    return fail("GetTempFileNameW");

  const wchar_t *rest = arguments(GetCommandLineW());
  size_t len = wcslen(self) + wcslen(status_path) + wcslen(rest) + 16;
  wchar_t *line = malloc(len * sizeof *line);
  if (!line) return fail("malloc");
  swprintf(line, len, L"\"%ls\" \"%ls\" %ls", self, status_path, rest);

  STARTUPINFOW si;
  PROCESS_INFORMATION pi;
  ZeroMemory(&si, sizeof si);
  ZeroMemory(&pi, sizeof pi);
  si.cb = sizeof si;
  if (!CreateProcessW(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
    DeleteFileW(status_path);
    return fail("CreateProcessW (of the .sh beside this program)");
  }
  /* A Windows child would give a handle to wait on; a Linux one gives none. */
  if (pi.hProcess) CloseHandle(pi.hProcess);
  if (pi.hThread) CloseHandle(pi.hThread);

  /* A tool that never writes its status (its .sh did not start) would
   * leave this waiting forever: after ten minutes it gives up, loudly. */
  int status = -1;
  for (int waited = 0;; waited += 10) {
    FILE *f = _wfopen(status_path, L"rb");
    if (f) {
      int got = fscanf(f, "%d", &status);
      fclose(f);
      if (got == 1) break;
    }
    if (waited >= 600000) {
      fwprintf(stderr, L"unixtool: %ls wrote no status in 600 s; giving up\n", self);
      DeleteFileW(status_path);
      return 1;
    }
    Sleep(10);
  }
  DeleteFileW(status_path);

  wchar_t out_path[MAX_PATH + 8];
  swprintf(out_path, MAX_PATH + 8, L"%ls.out", status_path);
  FILE *out = _wfopen(out_path, L"rb");
  if (out) {
    _setmode(_fileno(stdout), _O_BINARY);  /* the bytes as the tool wrote them */
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, out)) > 0) fwrite(buf, 1, got, stdout);
    fclose(out);
    fflush(stdout);
    DeleteFileW(out_path);
  }
  return status;
}
