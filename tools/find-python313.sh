#!/bin/sh
# Prints the path of a Python 3.13 interpreter, however it is installed (on PATH, any pyenv patch
# version, a system package, uv); otherwise says what it needs and fails. Used by the Makefile.
want='import sys; sys.exit(sys.version_info[:2] != (3, 13))'
for candidate in "$(command -v python3.13 2>/dev/null)" \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13 /usr/bin/python3.13 /usr/local/bin/python3.13; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c "$want" 2>/dev/null; then
    # A pyenv shim runs whichever version pyenv selects: name the interpreter itself.
    "$candidate" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
if command -v uv >/dev/null 2>&1 && found=$(uv python find 3.13 2>/dev/null); then
  echo "$found"
  exit 0
fi
echo "Python 3.13 is needed and none was found: install it (pyenv install 3.13, apt-get install python3.13," \
  "or uv python install 3.13), or name one with PYTHON313=/path/to/python3.13" >&2
exit 1
