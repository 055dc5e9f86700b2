#!/bin/sh
# Adds Moebius Studio to the applications menu, for this user only.
#   ./install-desktop-entry.sh            add it (again, after moving this folder)
#   ./install-desktop-entry.sh --remove   take it out again
# Writes ~/.local/share/applications/moebius-studio.desktop and the icon beside the
# others in ~/.local/share/icons; nothing outside your home folder, no root needed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data="${XDG_DATA_HOME:-$HOME/.local/share}"
entry="$data/applications/moebius-studio.desktop"
icon="$data/icons/hicolor/512x512/apps/moebius-studio.png"

if [ "${1:-}" = "--remove" ]; then
    rm -f "$entry" "$icon"
    echo "Moebius Studio was removed from the applications menu."
    exit 0
fi

case "$here" in
    *"
"*) echo "This folder's path contains a line break; move it elsewhere first." >&2; exit 1 ;;
esac
mkdir -p "$(dirname "$entry")" "$(dirname "$icon")"
cp "$here/_internal/resources/icon.png" "$icon"
# Escaping as the desktop-entry specification requires ("The Exec key"): the program is
# one quoted argument, inside which ", `, $ and \ take a backslash; a literal % is %%
# (else it is a field code); then the value's string escaping doubles every backslash.
# TryExec is a plain string: only that last step. awk fills the template with index()
# and substr(), so no character of the path means anything to it.
program="$here/MoebiusStudio"
EXEC=\"$(printf '%s' "$program" | sed -e 's/[\\"`$]/\\&/g' -e 's/%/%%/g' -e 's/\\/\\\\/g')\"
TRYEXEC=$(printf '%s' "$program" | sed -e 's/\\/\\\\/g')
export EXEC TRYEXEC
awk '
function put(line, key, value,    out, i) {
    out = ""
    while ((i = index(line, key)) > 0) {
        out = out substr(line, 1, i - 1) value
        line = substr(line, i + length(key))
    }
    return out line
}
{ print put(put(put($0, "@EXEC@", ENVIRON["EXEC"]), "@TRYEXEC@", ENVIRON["TRYEXEC"]),
            "@ICON@", "moebius-studio") }
' "$here/share/moebius-studio.desktop.in" > "$entry"
chmod +x "$entry"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$(dirname "$entry")" || true
echo "Moebius Studio is now in the applications menu ($entry)."
