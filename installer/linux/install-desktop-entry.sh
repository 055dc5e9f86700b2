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

mkdir -p "$(dirname "$entry")" "$(dirname "$icon")"
cp "$here/_internal/resources/icon.png" "$icon"
# sed replacement text: escape \, & and the | delimiter that a folder name may contain.
exe=$(printf '%s' "$here/MoebiusStudio" | sed 's/[\\&|]/\\&/g')
sed -e "s|@EXEC@|\"$exe\"|" -e "s|@TRYEXEC@|$exe|" -e "s|@ICON@|moebius-studio|" \
    "$here/share/moebius-studio.desktop.in" > "$entry"
chmod +x "$entry"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$(dirname "$entry")" || true
echo "Moebius Studio is now in the applications menu ($entry)."
