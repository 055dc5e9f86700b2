"""The product's names, spelled once."""

APP_NAME = "Moebius Studio"  # what people see: window title, dialogs, menu entries
APP_ID = "moebius-studio"  # the command, the desktop entry and the Python package
APP_DIR_NAME = "MoebiusStudio"  # the folder name for user data, config and logs
