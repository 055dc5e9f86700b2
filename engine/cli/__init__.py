"""The command line (`python main.py remove|batch|models`). The only engine package that
prints; everything else logs."""
