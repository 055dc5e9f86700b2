"""The product's names, spelled once."""

APP_NAME = "Moebius Studio"  # what people see: window title, dialogs, menu entries
APP_ID = "moebius-studio"  # the command, the desktop entry and the Python package
APP_DIR_NAME = "MoebiusStudio"  # the folder name for user data, config and logs

# The bundle's executables (installer/recipe.py builds them with these names).
BUNDLE_EXE = "MoebiusStudio"
BUNDLE_CLI_WINDOWS = "moebius-cli.exe"  # the console twin: a windowed .exe cannot print


def installation() -> str:
    """How this copy of the program was installed: "bundle" (the downloadable app, built
    by installer/), "checkout" (a source tree: main.py beside the packages, editable
    installs included) or "pip" (installed as a package, with the `moebius-studio`
    command)."""
    import sys
    from pathlib import Path

    if getattr(sys, "frozen", False):
        return "bundle"
    root = Path(__file__).resolve().parent.parent
    if (root / "main.py").is_file() and (root / "app").is_dir():
        return "checkout"
    return "pip"


def command_line(arguments: str) -> str:
    """The command a person types to run the command line with `arguments`, as it exists
    for this installation: `./MoebiusStudio models download ft_places2` in the Linux
    bundle, `python main.py models download ft_places2` in a checkout, `moebius-studio
    models download ft_places2` after pip install. Every message that tells a person
    what to run builds its command here."""
    import sys

    how = installation()
    if how == "bundle":
        if sys.platform == "win32":
            program = f".\\{BUNDLE_CLI_WINDOWS}"
        elif sys.platform == "darwin":
            program = f'"/Applications/{APP_NAME}.app/Contents/MacOS/{BUNDLE_EXE}"'
        else:
            program = f"./{BUNDLE_EXE}"
    elif how == "checkout":
        program = "python main.py"
    else:
        program = APP_ID
    return f"{program} {arguments}".rstrip()
