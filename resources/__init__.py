"""Data files shipped with the app (sample photo, icons), installed as `app.resources`."""
