"""``python -m smsgateway`` runs the command line."""

from smsgateway.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
