import sys

try:  # Ctrl-C while it starts: one line, as later
    from .cli import main
except KeyboardInterrupt:
    print("interrupted: nothing was lost; run the same command again", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
