"""``python -m facekey.cli``."""

from facekey.cli import main

main()
